import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Checked } from '../../../src/gateway/gatekeeper.ts';
import { accessLog } from '../../../src/observability/access-log.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import { RefusalDigest } from '../../../src/observability/refusal-digest.ts';

function recorder() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const log = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
  return { lines, logger: { info: log('info'), warn: log('warn') } as unknown as Logger };
}

const req = { method: 'GET', url: '/v1/x?api_key=secret' } as IncomingMessage;
const base: Checked = { requestId: 'r1', peer: '10.0.0.1', peerTrusted: false, via: null, client: '10.0.0.1', account: 'AC1', keyId: null, verdict: 'allow', reason: 'ip_allowed', entryId: 'e1', refusal: null };
const denied: Checked = { ...base, verdict: 'deny', reason: 'ip_not_allowed', entryId: null, refusal: { status: 403, reason: 'ip_not_allowed', message: 'no' } };

describe('access log', () => {
  it('logs every refusal with what was decided, and redacts the URL', () => {
    const { lines, logger } = recorder();
    const log = accessLog(logger, 0, new RefusalDigest(logger), 'proxy', () => 0);
    log.finished(req, denied, 403, 0.0012345);
    expect(lines).toEqual([{ level: 'warn', msg: 'request refused', obj: {
      request_id: 'r1', surface: 'proxy', method: 'GET', url: '/v1/x?api_key=[REDACTED]', peer: '10.0.0.1', client_ip: '10.0.0.1', account: 'AC1',
      decision: 'deny', reason: 'ip_not_allowed', entry_id: null, status: 403, duration_ms: 1.235,
    } }]);
  });

  it('samples forwarded requests at the configured rate', () => {
    const { lines, logger } = recorder();
    let draw = 0;
    const draws = [0.05, 0.2, 0.09, 0.5];
    const log = accessLog(logger, 0.1, new RefusalDigest(logger), 'proxy', () => draws[draw++]!);
    for (let i = 0; i < 4; i++) log.finished(req, base, 200, 0.001);
    expect(lines.map((l) => l.msg)).toEqual(['request forwarded', 'request forwarded']);
    const none = recorder();
    const off = accessLog(none.logger, 0, new RefusalDigest(none.logger), 'proxy', () => 0);
    off.finished(req, base, 200, 0.001);
    off.finished(req, { ...base, verdict: 'report_only', reason: 'ip_not_allowed' }, 200, 0.001);
    expect(none.lines.map((l) => l.msg)).toEqual(['request would be refused (report-only)']);
  });

  it('logs identical refusals once per interval with a count, keeps distinct ones apart, and stays within its key bound', () => {
    const { lines, logger } = recorder();
    const digest = new RefusalDigest(logger, { intervalMs: 60_000, maxKeys: 3 });
    const log = accessLog(logger, 0, digest, 'proxy', () => 0);
    for (let i = 0; i < 500; i++) log.finished(req, denied, 403, 0.001);
    log.finished(req, { ...denied, client: '10.0.0.2' }, 403, 0.001);
    log.finished(req, { ...denied, reason: 'ip_denied' }, 403, 0.001);
    // A fourth distinct key is past maxKeys: counted, not itemized.
    log.finished(req, { ...denied, account: 'AC2' }, 403, 0.001);
    log.finished(req, { ...denied, account: 'AC3' }, 403, 0.001);
    expect(lines.map((l) => l.msg)).toEqual(['request refused', 'request refused', 'request refused']);
    digest.close();
    expect(lines.slice(3)).toEqual([
      { level: 'warn', msg: 'request refused (repeated)', obj: { account: 'AC1', client_ip: '10.0.0.1', reason: 'ip_not_allowed', repeats: 499, interval_s: 60 } },
      { level: 'warn', msg: 'further refusals not itemized: too many distinct callers in one interval', obj: { events: 2, distinct_keys_logged: 3, interval_s: 60 } },
    ]);
    // A new interval logs the first refusal in full again.
    log.finished(req, denied, 403, 0.001);
    expect(lines.at(-1)!.msg).toBe('request refused');
    digest.close();
  });
});
