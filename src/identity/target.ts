/** A request target's path and raw query, as an origin server would route them. */
export interface Target {
  readonly path: string;
  /** The text after `?`, undecoded; null when there is no `?`. */
  readonly query: string | null;
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * Splits the raw target without URL parsing, which would normalize what the templates must see
 * as sent. The absolute form (`GET http://host/v1/...`) is reduced to its path because upstreams
 * route on that path, and a fragment, never sent by browsers but accepted by some parsers, is
 * dropped as an upstream would drop it.
 */
export function splitTarget(url: string): Target {
  let rest = url;
  if (url.charCodeAt(0) !== 0x2f /* / */) {
    const authority = ABSOLUTE_FORM.exec(url);
    if (authority !== null) {
      rest = url.slice(authority[0].length);
      if (rest.length === 0 || rest.charCodeAt(0) !== 0x2f) rest = `/${rest}`;
    }
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: null } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}
