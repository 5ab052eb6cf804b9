import type { FastifyReply } from 'fastify';

/**
 * The Content-Security-Policy of a hosted page. `formActionOrigins` are the origins,
 * besides Tessera's own, that a form on the page may reach — including through the
 * redirect that answers the form's POST: browsers that enforce `form-action` on redirects
 * (Chromium) block a 303 to an origin the directive does not list, which strands the user
 * on the page after the POST already took effect. Only ever pass an origin that was checked
 * against the allow-list (an app's registered return URL) for this very response; never a
 * value taken from the request as it came.
 *
 * Why each directive:
 * - `default-src 'none'`: the pages load nothing (no scripts at all, no images, no fonts),
 *   so anything injected has nothing to run or fetch.
 * - `style-src 'self'`: the one shared stylesheet, served by Tessera (stylesheet.ts). No
 *   inline `<style>` and no `style` attribute is allowed, so injected markup cannot restyle
 *   a page (e.g. hide a warning or overlay a button); scripts stay refused.
 * - `form-action`: where forms may post (and be redirected), see above.
 * - `frame-ancestors 'none'` (and X-Frame-Options for older browsers): no framing, so no
 *   clickjacking of the sign-in or sign-out buttons.
 * - `base-uri 'none'`: an injected `<base>` cannot re-point the relative form actions.
 */
export function pageContentSecurityPolicy(formActionOrigins: readonly string[] = []): string {
  const extra = [...new Set(formActionOrigins.map(checkedOrigin))];
  return ["default-src 'none'", "style-src 'self'", `form-action 'self'${extra.map((o) => ` ${o}`).join('')}`, "frame-ancestors 'none'", "base-uri 'none'"].join('; ');
}

/** An http(s) origin exactly as URL serialises it; anything else would widen or break the policy. */
function checkedOrigin(origin: string): string {
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    throw new TypeError(`not an origin: ${JSON.stringify(origin)}`);
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== origin) throw new TypeError(`not an http(s) origin: ${JSON.stringify(origin)}`);
  return origin;
}

/**
 * The headers of every HTML response Tessera sends, in one place: the CSP above, no
 * framing, no MIME sniffing, no Referer (page URLs carry return_to and client_id, which
 * other sites need not learn), never stored by a cache (pages show who is signed in and
 * carry CSRF tokens).
 */
export function pageHeaders(formActionOrigins: readonly string[] = []): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': pageContentSecurityPolicy(formActionOrigins),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

/** Options of {@link sendPage}. */
export interface SendPageOptions {
  /**
   * Origins (besides Tessera's own) that a form on this page may post to or be redirected
   * to after posting: only allow-listed ones, checked for this response (see
   * {@link pageContentSecurityPolicy}).
   */
  formActionOrigins?: readonly string[];
}

/**
 * Sends a hosted HTML page (login, messages, and every page to come: OIDC consent,
 * /account, /admin) with the headers of {@link pageHeaders}. Every hosted page goes
 * through here, so no page can miss a header.
 *
 * @example
 * ```ts
 * // A page whose form, once posted, redirects to the app's validated return_to.
 * return sendPage(reply, 200, renderLoginPage({ csrf, returnTo }), { formActionOrigins: [new URL(returnTo).origin] });
 * ```
 */
export function sendPage(reply: FastifyReply, status: number, html: string, options: SendPageOptions = {}): FastifyReply {
  return reply.status(status).headers(pageHeaders(options.formActionOrigins)).send(html);
}
