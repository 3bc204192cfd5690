import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Checked } from '../../../src/gateway/gatekeeper.ts';
import { accessLog } from '../../../src/observability/access-log.ts';
import type { Logger } from '../../../src/observability/logger.ts';

function recorder() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const log = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg });
  return { lines, logger: { info: log('info'), warn: log('warn') } as unknown as Logger };
}

const req = { method: 'GET', url: '/v1/x?api_key=secret' } as IncomingMessage;
const base: Checked = { requestId: 'r1', peer: '10.0.0.1', peerTrusted: false, client: '10.0.0.1', account: 'AC1', verdict: 'allow', reason: 'ip_allowed', entryId: 'e1', refusal: null };
const denied: Checked = { ...base, verdict: 'deny', reason: 'ip_not_allowed', entryId: null, refusal: { status: 403, reason: 'ip_not_allowed', message: 'no' } };

describe('access log', () => {
  it('logs every refusal with what was decided, and redacts the URL', () => {
    const { lines, logger } = recorder();
    const log = accessLog(logger, 0, () => 0);
    log.finished(req, denied, 403, 0.0012345);
    expect(lines).toEqual([{ level: 'warn', msg: 'request refused', obj: {
      request_id: 'r1', method: 'GET', url: '/v1/x?api_key=[REDACTED]', peer: '10.0.0.1', client_ip: '10.0.0.1', account: 'AC1',
      decision: 'deny', reason: 'ip_not_allowed', entry_id: null, status: 403, duration_ms: 1.235,
    } }]);
  });

  it('samples forwarded requests at the configured rate', () => {
    const { lines, logger } = recorder();
    let draw = 0;
    const draws = [0.05, 0.2, 0.09, 0.5];
    const log = accessLog(logger, 0.1, () => draws[draw++]!);
    for (let i = 0; i < 4; i++) log.finished(req, base, 200, 0.001);
    expect(lines.map((l) => l.msg)).toEqual(['request forwarded', 'request forwarded']);
    const none = recorder();
    const off = accessLog(none.logger, 0, () => 0);
    off.finished(req, base, 200, 0.001);
    off.finished(req, { ...base, verdict: 'report_only', reason: 'ip_not_allowed' }, 200, 0.001);
    expect(none.lines.map((l) => l.msg)).toEqual(['request would be refused (report-only)']);
  });
});
