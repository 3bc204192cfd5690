import type { ObservedDecision, ObservedRequest, RequestObserver, Surface } from './observer.ts';
import type { Logger } from './logger.ts';
import { redactUrl } from './redact-url.ts';
import type { RefusalDigest } from './refusal-digest.ts';

/**
 * The JSON access log: one line per request when it ends, with what was decided and why.
 * Refusals, report-only and fail-open decisions are always logged; plain forwarded requests are
 * sampled at `allowSampleRate` (0 to 1) so a busy gateway does not log every success. Identical
 * refusals (account, client, reason) go through `refusals`, so a flood logs a count rather than a
 * line each. Headers are never logged, and the URL's secret query values are redacted. On the
 * external-authorization surfaces the method and URL are the original request's, and `status` is
 * the check's answer.
 */
export function accessLog(logger: Logger, allowSampleRate: number, refusals: RefusalDigest, surface: Surface = 'proxy', random: () => number = Math.random): RequestObserver {
  const allowed = surface === 'proxy' ? 'request forwarded' : 'check allowed';
  return {
    decided: () => undefined,
    finished: (req: ObservedRequest, checked: ObservedDecision, status: number, durationSeconds: number) => {
      const always = checked.refusal !== null || checked.verdict === 'report_only' || checked.verdict === 'fail_open' || checked.verdict === 'error';
      if (!always && (allowSampleRate <= 0 || random() >= allowSampleRate)) return;
      const entry = {
        request_id: checked.requestId,
        surface,
        method: req.method,
        url: redactUrl(req.url ?? ''),
        peer: checked.peer,
        client_ip: checked.client,
        account: checked.account,
        ...(checked.keyId === null ? {} : { key_id: checked.keyId }),
        decision: checked.verdict,
        reason: checked.reason,
        entry_id: checked.entryId,
        status,
        duration_ms: Math.round(durationSeconds * 1e6) / 1e3,
        ...(checked.refusal?.cause === undefined ? {} : { cause: checked.refusal.cause }),
      };
      if (checked.refusal !== null) refusals.note(checked.account, checked.client ?? checked.peer, checked.reason, entry, 'request refused');
      else if (checked.verdict === 'report_only') logger.warn(entry, 'request would be refused (report-only)');
      else if (checked.verdict === 'fail_open') logger.warn(entry, `${surface === 'proxy' ? 'request forwarded' : 'check allowed'} unchecked: store unavailable (onStoreUnavailable: open)`);
      else logger.info(entry, allowed);
    },
  };
}
