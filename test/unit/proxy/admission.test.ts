import { describe, expect, it } from 'vitest';
import { Admission, capOf, TicketState, type Ticket } from '../../../src/proxy/admission.ts';

interface TestTicket extends Ticket {
  readonly events: string[];
}

function ticket(client: string, account: string): TestTicket {
  const events: string[] = [];
  return {
    client, account, events, state: TicketState.New, queuedAt: 0,
    run: () => events.push('run'),
    expire: () => events.push('expire'),
    watch: (now) => events.push(`watch@${now}`),
  };
}

describe('upstream admission', () => {
  it('runs up to `connections` at once, queues the rest in order, and starts the next as one ends', () => {
    const admission = new Admission({ connections: 2, perClient: 10, perAccount: 10, queueTimeoutMs: 1000 });
    const t = [0, 1, 2, 3].map((i) => ticket(`10.0.0.${i}`, `AC${i}`));
    for (const x of t) expect(admission.admit(x, 0)).toBeNull();
    expect(t.map((x) => x.events.length)).toEqual([1, 1, 0, 0]);
    expect([admission.running, admission.queued]).toEqual([2, 2]);
    admission.release(t[1]!);
    expect(t[2]!.events).toEqual(['run']);
    expect(t[3]!.events).toEqual([]);
    // A waiter that leaves is skipped, and does not hold its place.
    admission.release(t[3]!);
    admission.release(t[0]!);
    expect(t[3]!.events).toEqual([]);
    expect([admission.running, admission.queued]).toEqual([1, 0]);
    admission.release(t[2]!);
    expect([admission.running, admission.queued, admission.trackedKeys]).toEqual([0, 0, 0]);
  });

  it('turns a client address away at its cap, waiting or running, and an account at its own', () => {
    const admission = new Admission({ connections: 2, perClient: 3, perAccount: 4, queueTimeoutMs: 1000 });
    const mine = [0, 1, 2].map(() => ticket('10.0.0.1', 'AC1'));
    for (const x of mine) expect(admission.admit(x, 0)).toBeNull();
    expect(admission.admit(ticket('10.0.0.1', 'AC2'), 0)).toBe('client');
    // Another address, same account: one more fits under the account's cap of 4, then no more.
    expect(admission.admit(ticket('10.0.0.2', 'AC1'), 0)).toBeNull();
    expect(admission.admit(ticket('10.0.0.3', 'AC1'), 0)).toBe('account');
    // Another address and account is admitted whatever the first caller holds.
    expect(admission.admit(ticket('10.0.0.9', 'AC9'), 0)).toBeNull();
    admission.release(mine[0]!);
    expect(admission.admit(ticket('10.0.0.1', 'AC3'), 0)).toBeNull();
  });

  it('expires waiters past queueTimeoutMs (oldest first, once each) and lets running ones watch their progress', () => {
    const admission = new Admission({ connections: 1, perClient: 10, perAccount: 10, queueTimeoutMs: 100 });
    const running = ticket('a', 'A');
    const early = ticket('b', 'B');
    const late = ticket('c', 'C');
    admission.admit(running, 0);
    admission.admit(early, 10);
    admission.admit(late, 60);
    admission.sweep(100);
    expect(early.events).toEqual([]);
    admission.sweep(111);
    expect(early.events).toEqual(['expire']);
    expect(late.events).toEqual([]);
    expect(running.events).toEqual(['run', 'watch@100', 'watch@111']);
    admission.sweep(200);
    admission.sweep(300);
    expect(late.events).toEqual(['expire']);
    expect(early.events).toEqual(['expire']);
    expect(admission.queued).toBe(0);
    // Released twice (expired, then the caller's close): counted once.
    admission.release(early);
    admission.release(running);
    expect(admission.trackedKeys).toBe(0);
  });

  it('derives caps from shares of the connections, never below one', () => {
    expect(capOf(128, 0.25)).toBe(32);
    expect(capOf(10_000, 0.5)).toBe(5_000);
    expect(capOf(2, 0.25)).toBe(1);
  });
});
