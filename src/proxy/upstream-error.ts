import { refusal, type Refusal } from '../http/refusal.ts';

export type UpstreamErrorKind = 'refused' | 'reset' | 'timeout' | 'other';

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function codeOf(error: unknown): string | undefined {
  let current: unknown = error;
  // undici wraps socket errors; the cause carries the system code.
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code && code !== 'UND_ERR') return code;
    current = current.cause;
  }
  return undefined;
}

export function classifyUpstreamError(error: unknown): UpstreamErrorKind {
  const code = codeOf(error);
  if (code === undefined) return 'other';
  if (TIMEOUTS.has(code)) return 'timeout';
  if (REFUSED.has(code)) return 'refused';
  if (RESET.has(code)) return 'reset';
  return 'other';
}

/** What the caller is told when the upstream fails before a response started: 502, or 504 on timeout. */
export function upstreamRefusal(kind: UpstreamErrorKind, upstream: string): Refusal {
  switch (kind) {
    case 'timeout':
      return refusal(504, 'upstream_timeout', `the upstream ${upstream} did not answer in time`);
    case 'refused':
      return refusal(502, 'upstream_unavailable', `the upstream ${upstream} refused the connection or could not be reached`);
    case 'reset':
      return refusal(502, 'upstream_reset', `the upstream ${upstream} closed the connection before answering`);
    default:
      return refusal(502, 'upstream_error', `the upstream ${upstream} failed to answer`);
  }
}
