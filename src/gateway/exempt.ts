/**
 * Exempt paths (health checks and the like) skip identity and policy. A path is exempt only when
 * it is already in canonical form and lies under an exempt prefix by whole segments, compared
 * case-sensitively. Anything a server might rewrite (`//`, `.` and `..` segments, percent
 * escapes, backslashes, `;` parameters) is simply not exempt: it goes through the full checks,
 * so no spelling of a protected route can reach it as exempt.
 */
export function compileExemptMatcher(prefixes: readonly string[]): (url: string) => boolean {
  if (prefixes.length === 0) return () => false;
  const exact = new Set(prefixes);
  const under = prefixes.map((p) => (p === '/' ? '/' : `${p}/`));
  // Most requests are under no exempt prefix: they are dismissed before the canonical-form check.
  return (url) => {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    let listed = exact.has(path);
    for (let i = 0; !listed && i < under.length; i++) listed = path.startsWith(under[i]!);
    return listed && isCanonicalPath(path);
  };
}

export function isCanonicalPath(path: string): boolean {
  if (path.length === 0 || path.charCodeAt(0) !== 47 /* / */) return false;
  if (/[%\\;#]/.test(path) || path.includes('//')) return false;
  return !/\/\.\.?(?:\/|$)/.test(path);
}
