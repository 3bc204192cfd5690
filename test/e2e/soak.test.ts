import { describe, expect, it } from 'vitest';
import { runSoak } from '../soak/soak.ts';

/** The soak's short variant: one minute of mixed traffic with an admin change every second. */
describe('soak, 60 s', () => {
  it('answers every request as the lists say, with bounded memory and no leaked sockets or handles', async () => {
    const report = await runSoak({ durationMs: 60_000 });
    console.log(`soak: ${report.requests} requests in ${report.seconds.toFixed(0)} s, ${report.adminChanges} admin changes; ` +
      `heap ${report.heapStartMb.toFixed(0)} -> ${report.heapEndMb.toFixed(0)} MB, RSS ${report.rssStartMb.toFixed(0)} -> ${report.rssEndMb.toFixed(0)} MB ` +
      `(peak ${report.rssMiddlePeakMb.toFixed(0)} MB over the middle third, ${report.rssEndPeakMb.toFixed(0)} MB over the last); ` +
      `fds ${report.fdsBefore} -> ${report.fdsAfter}, handles ${report.handlesBefore} -> ${report.handlesAfter}`);
    expect(report.unexpected).toEqual([]);
    expect(report.unexpectedCount).toBe(0);
    expect(report.wrongDecisions).toBe(0);
    expect(report.transportErrors).toBe(0);
    expect(report.adminChanges).toBeGreaterThanOrEqual(50);
    for (const count of Object.values(report.byKind)) expect(count).toBeGreaterThan(500);
    // Caches, pending recent callers and audit are bounded: what is live at the end of the minute
    // is no more than at its start, give or take the cache filling with the cold accounts.
    expect(report.heapEndMb - report.heapStartMb).toBeLessThan(32);
    // RSS flat after warm-up (the gateway runs with the project's runtime flags): the last third
    // peaks no higher than the middle third, give or take allocator noise.
    expect(report.rssEndPeakMb).toBeLessThanOrEqual(report.rssMiddlePeakMb + 12);
    expect(report.fdsAfter).toBeLessThanOrEqual(report.fdsBefore + 2);
    expect(report.handlesAfter).toBeLessThanOrEqual(report.handlesBefore + 2);
  }, 120_000);
});
