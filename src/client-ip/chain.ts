/**
 * Splitting forwarding header lines into entries without parsing the addresses yet.
 *
 * Splitting always covers every line and every entry, even though the walk later examines only
 * the rightmost ones: the length bound and hop counting need the exact number of entries, and a
 * count that depended on what the client wrote on the left could be shifted by that client.
 * Each line is split on its own, as its own field, so a quote the client leaves open in its line
 * cannot swallow a line a proxy added after it.
 */

import { isBlank } from './entry.ts';

/** Entry positions, left to right in request order; one instance is reused across requests. */
export interface Spans {
  /** Index into rawHeaders of the value holding the entry. */
  readonly line: Int32Array;
  readonly start: Int32Array;
  readonly end: Int32Array;
  /** 1 when the entry is malformed before its address is even read (start/end then span all of it). */
  readonly broken: Uint8Array;
  count: number;
}

/** Splits one header value into `spans`; false when the entries no longer fit (chain too long). */
export type Splitter = (value: string, line: number, spans: Spans) => boolean;

export function createSpans(capacity: number): Spans {
  return {
    line: new Int32Array(capacity),
    start: new Int32Array(capacity),
    end: new Int32Array(capacity),
    broken: new Uint8Array(capacity),
    count: 0,
  };
}

function push(spans: Spans, line: number, start: number, end: number, broken: boolean): boolean {
  const k = spans.count;
  if (k === spans.line.length) return false;
  spans.line[k] = line;
  spans.start[k] = start;
  spans.end[k] = end;
  spans.broken[k] = broken ? 1 : 0;
  spans.count = k + 1;
  return true;
}

const COMMA = 44;
const SEMICOLON = 59;
const EQUALS = 61;
const QUOTE = 34;
const BACKSLASH = 92;

/**
 * `X-Forwarded-For: client, proxy1, proxy2`. Every comma separates two entries, so `a,,b`, a
 * trailing comma and an empty line each yield an empty entry, which the walk refuses if it
 * reaches it: an empty slot is a proxy that failed to write, not a hop to skip.
 */
export const splitXForwardedFor: Splitter = (value, line, spans) => {
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) !== COMMA) continue;
    if (!push(spans, line, start, i, false)) return false;
    start = i + 1;
  }
  return push(spans, line, start, value.length, false);
};

/**
 * RFC 7239 `Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]:4711"`. Each element
 * becomes one entry: its `for=` value (unquoted), or, when the element has no `for=`, several of
 * them, a pair without `=` or an unterminated quote, the whole element marked broken. Broken
 * elements still count, so hop indexing stays exact.
 *
 * Escapes (quoted-pair) are skipped while looking for the closing quote but never decoded: no
 * address needs one, so a value holding one is refused as not an address, and decoding would be
 * one more place for the gateway and the upstream to disagree.
 */
export const splitForwarded: Splitter = (value, line, spans) => {
  const len = value.length;
  let elementStart = 0;
  let pairStart = 0;
  let quoted = false;
  let fors = 0;
  let broken = false;
  let forStart = 0;
  let forEnd = 0;
  for (let i = 0; ; i++) {
    const atEnd = i >= len;
    // An escape as the last character steps past the end; the element still ends at the end.
    if (atEnd) i = len;
    const c = atEnd ? COMMA : value.charCodeAt(i);
    if (quoted && !atEnd) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) quoted = false;
      continue;
    }
    if (c === QUOTE) {
      quoted = true;
      continue;
    }
    if (c !== SEMICOLON && c !== COMMA) continue;

    let ps = pairStart;
    let pe = i;
    while (ps < pe && isBlank(value.charCodeAt(ps))) ps++;
    while (pe > ps && isBlank(value.charCodeAt(pe - 1))) pe--;
    if (ps < pe) {
      let eq = ps;
      while (eq < pe && value.charCodeAt(eq) !== EQUALS) eq++;
      if (eq === pe) {
        broken = true;
      } else if (isFor(value, ps, eq)) {
        fors++;
        let vs = eq + 1;
        let ve = pe;
        while (vs < ve && isBlank(value.charCodeAt(vs))) vs++;
        if (vs < ve && value.charCodeAt(vs) === QUOTE) {
          if (ve - vs < 2 || value.charCodeAt(ve - 1) !== QUOTE) broken = true;
          vs++;
          ve--;
        }
        forStart = vs;
        forEnd = ve;
      }
    }
    pairStart = i + 1;

    if (c === COMMA) {
      const ok = broken || fors !== 1
        ? push(spans, line, elementStart, i, true)
        : push(spans, line, forStart, forEnd, false);
      if (!ok) return false;
      if (atEnd) return true;
      elementStart = i + 1;
      fors = 0;
      broken = false;
    }
  }
};

/** The parameter name in text[start, end) is `for`, in any case, allowing blanks before `=`. */
function isFor(text: string, start: number, end: number): boolean {
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  return end - start === 3
    && (text.charCodeAt(start) | 0x20) === 102
    && (text.charCodeAt(start + 1) | 0x20) === 111
    && (text.charCodeAt(start + 2) | 0x20) === 114;
}
