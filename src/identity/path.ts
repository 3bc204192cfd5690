import { quoteUntrusted } from './account-id.ts';
import { accountFrom, NOTHING, refused } from './extraction.ts';
import type { Extraction } from './types.ts';

const PLACEHOLDER = '{account}';

export interface PathTemplate {
  /** As configured, for messages. */
  readonly text: string;
  /** Literal segments, with null where the account is. */
  readonly segments: readonly (string | null)[];
  /** The same, lower-cased, for the lenient reading. */
  readonly folded: readonly (string | null)[];
  /** Where the account is among the segments. */
  readonly position: number;
}

/** Throws on a template that could never match, or could match in more than one way. */
export function compilePathTemplates(templates: readonly string[]): readonly PathTemplate[] {
  if (templates.length === 0) throw new Error('identity path strategy needs at least one template, e.g. /v1/Account/{account}/');
  return templates.map(compileTemplate);
}

function compileTemplate(text: string): PathTemplate {
  const bad = (why: string): never => {
    throw new Error(`identity path template '${text}' ${why}`);
  };
  if (!text.startsWith('/')) bad('must start with /');
  if (/[?#%\\;]/.test(text)) bad('must be a plain path, without ? # % \\ or ;');
  // A trailing slash is allowed for readability: templates match as prefixes by whole segments
  // either way.
  const body = text.endsWith('/') ? text.slice(1, -1) : text.slice(1);
  const segments = body.split('/').map((segment): string | null => {
    if (segment === PLACEHOLDER) return null;
    if (segment.length === 0) bad('has an empty segment');
    if (segment === '.' || segment === '..') bad('has a . or .. segment');
    if (segment.includes('{') || segment.includes('}')) bad(`may only use ${PLACEHOLDER}, as a whole segment`);
    return segment;
  });
  if (segments.filter((s) => s === null).length !== 1) bad(`must contain ${PLACEHOLDER} exactly once, as a whole segment`);
  return { text, segments, folded: segments.map((s) => (s === null ? null : s.toLowerCase())), position: segments.indexOf(null) };
}

const NEEDS_NORMALIZING = /[%\\;]|\/\/|\/\.\.?(?:\/|$)/;
const ENCODED_SEPARATOR = /%(?:2f|5c)/i;

/**
 * The account in the path. A template's literal segments match exactly (case-sensitive), and
 * `{account}` captures one non-empty segment, percent-decoded. An id in the last segment with a
 * `.` is marked `suffixed`: Rails (`.:format`) and Spring (suffix patterns) route
 * `/v1/Account/AC1.json` to account AC1.
 *
 * Upstreams may route a path differently from how it is written: they may ignore case, decode
 * escapes, collapse `//`, resolve `.` and `..`, take `\` for `/` or drop `;params`. So the path is
 * also read that lenient way, and when the two readings name different accounts (or only one of
 * them names one) the request is refused: otherwise `/v1/account/B/` or `/v1/./Account/B/` could
 * reach account B's resources without B's list being checked.
 */
export function extractPathAccount(path: string, templates: readonly PathTemplate[]): Extraction {
  if (path.charCodeAt(0) !== 0x2f /* / */) return NOTHING;
  const raw = path.slice(1).split('/');
  const lenient = NEEDS_NORMALIZING.test(path) ? normalize(raw) : raw;
  let found: Extraction = NOTHING;
  let foundBy: PathTemplate | undefined;
  for (const template of templates) {
    const strict = capture(raw, template.segments, false);
    const loose = capture(lenient, template.folded, true);
    if (strict === null) {
      if (loose !== null) return nonCanonical(template);
      continue;
    }
    const extraction = decodeCapture(strict, template, isLast(raw, template.position));
    if (extraction.kind !== 'account') return extraction;
    if (loose !== extraction.account) return nonCanonical(template);
    if (foundBy === undefined) {
      found = extraction;
      foundBy = template;
    } else if (found.kind === 'account' && found.account !== extraction.account) {
      return refused(400, 'ambiguous_credentials', `the path matches templates ${foundBy.text} and ${template.text}, which name different accounts; send one`);
    }
  }
  return found;
}

/** The segment in the account's place, when every literal matches; null otherwise. */
function capture(segments: readonly string[], template: readonly (string | null)[], fold: boolean): string | null {
  if (segments.length < template.length) return null;
  let captured: string | null = null;
  for (let i = 0; i < template.length; i++) {
    const expected = template[i];
    const actual = segments[i]!;
    if (expected === null) {
      if (actual.length === 0) return null;
      captured = actual;
    } else if (expected !== (fold ? actual.toLowerCase() : actual)) {
      return null;
    }
  }
  return captured;
}

/** Whether nothing but empty segments (trailing slashes) follows segment `at`. */
function isLast(segments: readonly string[], at: number): boolean {
  for (let i = at + 1; i < segments.length; i++) if (segments[i]!.length > 0) return false;
  return true;
}

function decodeCapture(segment: string, template: PathTemplate, last: boolean): Extraction {
  const source = `the path (template ${template.text})`;
  if (ENCODED_SEPARATOR.test(segment)) {
    return refused(400, 'invalid_account', `the account segment of ${source} contains an encoded / or \\ (${quoteUntrusted(segment)})`);
  }
  let decoded: string;
  try {
    decoded = segment.includes('%') ? decodeURIComponent(segment) : segment;
  } catch {
    return refused(400, 'invalid_account', `the account segment of ${source} is not valid percent-encoding (${quoteUntrusted(segment)})`);
  }
  // The last segment is where routers find a format (`AC1.json`): the account naming step then
  // also asks whether the part before a dot names another account.
  return accountFrom(decoded, source, last && decoded.indexOf('.') > 0);
}

/** The path's segments as a lenient server might route them (lenient decoding included). */
function normalize(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (const part of raw) {
    const semicolon = part.indexOf(';');
    const undecorated = semicolon < 0 ? part : part.slice(0, semicolon);
    let decoded = undecorated;
    try {
      decoded = decodeURIComponent(undecorated);
    } catch {
      // Left as written, as lenient servers do.
    }
    for (const segment of decoded.split(/[/\\]/)) {
      if (segment === '' || segment === '.') continue;
      if (segment === '..') out.pop();
      else out.push(segment);
    }
  }
  return out;
}

function nonCanonical(template: PathTemplate): Extraction {
  return refused(400, 'noncanonical_path', `the path names an account only in a non-canonical spelling (letter case, escapes, //, . or .., \\ or ;) of template ${template.text}; send the path as the template writes it`);
}
