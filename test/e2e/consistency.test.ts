import { describe, expect, it } from 'vitest';
import { runConsistency, SHORT } from '../consistency/run.ts';

/*
 * The short form of the consistency run (test/consistency/run.ts; the long one is
 * `npm run test:consistency`): three replicas, six writers, Redis frozen and killed (restarted
 * from its AOF) while they write; the history checked against the final lists, the versions, the
 * audit trail and what every replica enforces.
 */
describe('consistency under Redis faults (short run)', () => {
  it('loses no acknowledged change, makes no phantom, audits every change in version order, and every replica enforces the final lists', async () => {
    const lines: string[] = [];
    const report = await runConsistency({ ...SHORT, log: (line) => lines.push(line) });
    console.log(lines.join('\n'));
    expect(report.violations).toEqual([]);
    // The run did what it is for: faults of both kinds, and writes answered every way.
    expect(report.faults.filter((f) => f.kind === 'freeze').length).toBeGreaterThanOrEqual(1);
    expect(report.faults.filter((f) => f.kind === 'kill').length).toBeGreaterThanOrEqual(1);
    expect(report.outcomes.ok).toBeGreaterThan(200);
    expect(report.outcomes.failed + report.outcomes.unknown).toBeGreaterThan(0);
  }, 150_000);
});
