/**
 * Redirect targets are compared as exact strings against an allow-list. No prefix, no
 * wildcard, no normalisation: every "smart" matcher has been bypassed somewhere
 * (`https://app.example.com.evil.com`, `//evil.com`, userinfo tricks, case games).
 */
export function isAllowedReturnUrl(candidate: string, allowList: Iterable<string>): boolean {
  for (const allowed of allowList) if (allowed === candidate) return true;
  return false;
}

/**
 * The origin (`scheme://host[:port]`) of an absolute http(s) URL, or null. Used to check
 * that app-registered origins are well formed.
 */
export function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
    return parsed.origin;
  } catch {
    return null;
  }
}
