/**
 * A small RFC 6265 cookie jar for end-to-end tests: it stores what `Set-Cookie` says and
 * sends back what a browser would. Like a browser it ignores ports (cookies are scoped by
 * host), honours Path, Domain, Secure, Max-Age and Expires (Max-Age wins; zero or negative
 * deletes), and drops a cookie whose Domain does not cover the response's host.
 * SameSite is not modelled: every request in these tests is same-site.
 */
export interface StoredCookie {
  name: string;
  value: string;
  /** Lower-case host (host-only cookie) or domain (Domain attribute, leading dot removed). */
  domain: string;
  hostOnly: boolean;
  path: string;
  /** Epoch milliseconds, or null for a session cookie. */
  expiresAt: number | null;
  secure: boolean;
  httpOnly: boolean;
}

/** The jar returned by {@link createCookieJar}. */
export interface CookieJar {
  /** Applies the `Set-Cookie` headers of a response received from `url`. */
  store(url: string | URL, setCookieHeaders: readonly string[]): void;
  /** The `Cookie` header a browser would send to `url` (empty string when none). */
  headerFor(url: string | URL): string;
  /** The live cookie `name` that would be sent to `url`, if any. */
  get(name: string, url: string | URL): StoredCookie | undefined;
  /** Every live cookie (for assertions and debugging). */
  all(): StoredCookie[];
}

const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(':');

/** RFC 6265 §5.1.4: the directory of the request path. */
function defaultPath(pathname: string): string {
  if (!pathname.startsWith('/')) return '/';
  const last = pathname.lastIndexOf('/');
  return last <= 0 ? '/' : pathname.slice(0, last);
}

/** RFC 6265 §5.1.4 path-match. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/** RFC 6265 §5.1.3 domain-match (no suffix matching for IP addresses). */
function domainMatches(host: string, cookie: Pick<StoredCookie, 'domain' | 'hostOnly'>): boolean {
  if (cookie.hostOnly || isIp(host)) return host === cookie.domain;
  return host === cookie.domain || host.endsWith(`.${cookie.domain}`);
}

function parseSetCookie(header: string, url: URL, now: number): StoredCookie | null {
  const [pair = '', ...attributes] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return null;
  const host = url.hostname.toLowerCase();
  const cookie: StoredCookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), domain: host, hostOnly: true, path: defaultPath(url.pathname), expiresAt: null, secure: false, httpOnly: false };
  let maxAge: number | null = null;
  let expires: number | null = null;
  for (const attribute of attributes) {
    const at = attribute.indexOf('=');
    const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
    const value = at < 0 ? '' : attribute.slice(at + 1).trim();
    if (key === 'max-age' && /^-?\d+$/.test(value)) maxAge = Number(value);
    else if (key === 'expires' && !Number.isNaN(Date.parse(value))) expires = Date.parse(value);
    else if (key === 'path') cookie.path = value.startsWith('/') ? value : defaultPath(url.pathname);
    else if (key === 'secure') cookie.secure = true;
    else if (key === 'httponly') cookie.httpOnly = true;
    else if (key === 'domain' && value !== '') {
      const domain = value.replace(/^\./, '').toLowerCase();
      // A server may only set cookies for its own host or a parent domain of it.
      if (!domainMatches(host, { domain, hostOnly: false })) return null;
      cookie.domain = domain;
      cookie.hostOnly = domain === host;
    }
  }
  if (maxAge !== null) cookie.expiresAt = maxAge <= 0 ? 0 : now + maxAge * 1000;
  else if (expires !== null) cookie.expiresAt = expires;
  // Browsers refuse Secure cookies from insecure origins.
  if (cookie.secure && url.protocol !== 'https:') return null;
  return cookie;
}

/**
 * Creates an empty jar.
 *
 * @example
 * ```ts
 * const jar = createCookieJar();
 * jar.store(url, response.headers.getSetCookie());
 * await fetch(next, { headers: { cookie: jar.headerFor(next) } });
 * ```
 */
export function createCookieJar(clock: () => number = Date.now): CookieJar {
  let cookies: StoredCookie[] = [];
  const live = () => {
    const now = clock();
    cookies = cookies.filter((c) => c.expiresAt === null || c.expiresAt > now);
    return cookies;
  };
  const matching = (target: URL) => {
    const host = target.hostname.toLowerCase();
    return live()
      .filter((c) => domainMatches(host, c) && pathMatches(target.pathname, c.path) && (!c.secure || target.protocol === 'https:'))
      .sort((a, b) => b.path.length - a.path.length);
  };
  return {
    store(url, headers) {
      const source = new URL(url);
      for (const header of headers) {
        const cookie = parseSetCookie(header, source, clock());
        if (!cookie) continue;
        // Same name, domain and path replaces in place, keeping the old one's creation order
        // (RFC 6265 §5.3 step 11); an already expired cookie deletes it.
        const at = cookies.findIndex((c) => c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path);
        const alive = cookie.expiresAt === null || cookie.expiresAt > clock();
        if (at >= 0) cookies.splice(at, 1, ...(alive ? [cookie] : []));
        else if (alive) cookies.push(cookie);
      }
    },
    headerFor(url) {
      return matching(new URL(url)).map((c) => `${c.name}=${c.value}`).join('; ');
    },
    get(name, url) {
      return matching(new URL(url)).find((c) => c.name === name);
    },
    all() {
      return [...live()];
    },
  };
}
