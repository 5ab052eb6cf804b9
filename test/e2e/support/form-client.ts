import { createCookieJar, type CookieJar } from './cookie-jar.js';

/** One response on the way to a page (redirects included). */
export interface Hop {
  method: string;
  url: string;
  status: number;
  location: string | null;
}

/** Where a navigation ended, and how it got there. */
export interface Page {
  url: string;
  status: number;
  html: string;
  /** Every response of the navigation in order, the final one last. */
  hops: Hop[];
}

/** The client returned by {@link createFormClient}. */
export interface FormClient {
  jar: CookieJar;
  /** GET `url` and follow redirects, like typing it in the address bar. */
  open(url: string): Promise<Page>;
  /**
   * Submits a form of `page` like a user pressing its button: the form whose action path is
   * `action` (default: the first form), its inputs with their values, overridden by
   * `fields`. Sends `Origin` as browsers do on POST.
   */
  submitForm(page: Page, options?: { action?: string; fields?: Record<string, string> }): Promise<Page>;
  /** The absolute href of the first link of `page` whose text is `text`. */
  linkHref(page: Page, text: string): string;
}

const decode = (text: string) =>
  text.replace(/&(#\d+|#x[\da-f]+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (e[0] !== '#') return named[e.toLowerCase()]!;
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
  });

function attributes(tag: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*"([^"]*)"/g)) found[m[1]!.toLowerCase()] = decode(m[2]!);
  return found;
}

/**
 * Not a browser: an HTTP client over `fetch` for tests of what the server does behind a
 * form (e.g. which notices a logout sends), where a real browser adds nothing. It enforces
 * no CSP, no SameSite, no CORS: every browser flow is tested in Chromium instead
 * (support/chromium.ts). One cookie jar, redirects followed by hand
 * (`redirect: 'manual'`) so that every hop's cookies are stored and every hop is visible
 * to assertions. 303 (and 301/302 after POST) turn into a GET without body, as browsers do.
 *
 * @example
 * ```ts
 * const client = createFormClient({ userAgent: 'laptop' });
 * const home = await client.open('http://127.0.0.1:3001/');
 * ```
 */
export function createFormClient(options: { userAgent?: string; jar?: CookieJar } = {}): FormClient {
  const jar = options.jar ?? createCookieJar();
  const userAgent = options.userAgent ?? 'tessera-e2e-form-client';

  async function navigate(url: string, init: { method: string; body?: string; headers?: Record<string, string> }): Promise<Page> {
    const hops: Hop[] = [];
    let current = { url, ...init };
    for (let i = 0; i < 10; i += 1) {
      const cookie = jar.headerFor(current.url);
      const response = await fetch(current.url, {
        method: current.method,
        redirect: 'manual',
        headers: { 'user-agent': userAgent, accept: 'text/html', ...(cookie ? { cookie } : {}), ...current.headers },
        ...(current.body === undefined ? {} : { body: current.body }),
      });
      jar.store(current.url, response.headers.getSetCookie());
      const location = response.headers.get('location');
      hops.push({ method: current.method, url: current.url, status: response.status, location });
      if ([301, 302, 303, 307, 308].includes(response.status) && location) {
        await response.arrayBuffer();
        const next = new URL(location, current.url).href;
        const keepMethod = response.status === 307 || response.status === 308 || ((response.status === 301 || response.status === 302) && current.method === 'GET');
        current = keepMethod ? { ...current, url: next } : { url: next, method: 'GET' };
        continue;
      }
      return { url: current.url, status: response.status, html: await response.text(), hops };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  return {
    jar,
    open: (url) => navigate(url, { method: 'GET' }),
    async submitForm(page, { action, fields = {} } = {}) {
      const forms = [...page.html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map((m) => ({ attrs: attributes(m[1]!), inner: m[2]! }));
      const form = forms.find((f) => action === undefined || new URL(f.attrs.action ?? '', page.url).pathname === action);
      if (!form) throw new Error(`no form${action ? ` with action ${action}` : ''} at ${page.url}`);
      const values = new URLSearchParams();
      for (const m of form.inner.matchAll(/<input\b([^>]*)>/gi)) {
        const input = attributes(m[1]!);
        if (input.name && !(input.name in fields)) values.set(input.name, input.value ?? '');
      }
      for (const [name, value] of Object.entries(fields)) values.set(name, value);
      const target = new URL(form.attrs.action ?? '', page.url).href;
      const method = (form.attrs.method ?? 'get').toUpperCase();
      if (method === 'GET') return navigate(`${target.split('?')[0]}?${values}`, { method });
      return navigate(target, { method, body: values.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(page.url).origin } });
    },
    linkHref(page, text) {
      for (const m of page.html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/gi)) {
        if (decode(m[2]!.replace(/<[^>]*>/g, '')).trim() === text) return new URL(attributes(m[1]!).href ?? '', page.url).href;
      }
      throw new Error(`no link "${text}" at ${page.url}`);
    },
  };
}
