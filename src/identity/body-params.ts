/**
 * Bodies that frameworks parse into the request's parameters, beside the query: the gateway does
 * not read bodies, so a parameter it reads in the query (the query strategy's, a bearer token's)
 * could come in a body too, unseen. What counts as such a body is read from Content-Type as the
 * most lenient stacks read it, not as RFC 9110 writes it.
 */

/**
 * `form`: a form body (urlencoded or any multipart), `json`: a JSON body, `any`: a media range
 * (`*\/*`, `application/*`) that a content negotiator hands to whichever parser comes first.
 */
export type ParsedBody = 'form' | 'json' | 'any';

/**
 * The kind of body one Content-Type value announces, or null for a body no framework merges into
 * the parameters.
 *
 * - The media type is the text before the first `;`, `,` or whitespace, lower-cased: PHP cuts at
 *   `;`, `,` and space, Rack at `;` and `,` (and strips the spaces around them), so
 *   `application/x-www-form-urlencoded,` and `multipart/form-data boundary=b` are forms to them.
 * - Forms: `application/x-www-form-urlencoded` and every `multipart/` type (Rack parses
 *   multipart/mixed and multipart/related as well).
 * - JSON: `json` anywhere in the value: Laravel's `isJson()` looks for `/json` or `+json` in the
 *   whole header, Rails also takes `text/x-json` and `application/jsonrequest`.
 */
export function parsedBodyOf(contentType: string): ParsedBody | null {
  let start = 0;
  const length = contentType.length;
  while (start < length && isSpace(contentType.charCodeAt(start))) start++;
  let end = start;
  while (end < length) {
    const c = contentType.charCodeAt(end);
    if (c === 59 /* ; */ || c === 44 /* , */ || isSpace(c)) break;
    end++;
  }
  // Compared in place, ignoring case: no copy of the header per request.
  if (isAt(contentType, start, end, FORM_URLENCODED, true) || isAt(contentType, start, end, MULTIPART, false)) return 'form';
  if (holdsJson(contentType)) return 'json';
  if (end - start >= 2 && contentType.charCodeAt(end - 1) === 42 /* * */ && contentType.charCodeAt(end - 2) === 47 /* / */) return 'any';
  return null;
}

const FORM_URLENCODED = 'application/x-www-form-urlencoded';
const MULTIPART = 'multipart/';

/** Whether text[start, end) is `lower` (whole: the whole range; else: a prefix), ignoring ASCII case. */
function isAt(text: string, start: number, end: number, lower: string, whole: boolean): boolean {
  if (whole ? end - start !== lower.length : end - start < lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const got = text.charCodeAt(start + i);
    const want = lower.charCodeAt(i);
    if (got !== want && !(want >= 0x61 && want <= 0x7a && (got | 0x20) === want)) return false;
  }
  return true;
}

/** Whether `json` occurs anywhere in the value, in any case. */
function holdsJson(text: string): boolean {
  for (let i = text.length - 4; i >= 0; i--) {
    if ((text.charCodeAt(i) | 0x20) === 0x6a && (text.charCodeAt(i + 1) | 0x20) === 0x73 && (text.charCodeAt(i + 2) | 0x20) === 0x6f && (text.charCodeAt(i + 3) | 0x20) === 0x6e) return true;
  }
  return false;
}

/**
 * Whether a request without Content-Type (or with an empty one) is parsed as a form: Rack reads
 * the body of such a POST as urlencoded (Sinatra, Grape, Hanami, Roda...), when there is a body.
 */
export function untypedBodyIsForm(method: string | undefined, mayHaveBody: boolean): boolean {
  return mayHaveBody && method === 'POST';
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
