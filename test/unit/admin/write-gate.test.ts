import { describe, expect, it } from 'vitest';
import { WriteGate } from '../../../src/admin/write-gate.ts';

describe('admin write admission', () => {
  it('lets a credential burst, then paces it, without touching another credential', () => {
    let now = 0;
    const gate = new WriteGate({ concurrent: 100, concurrentPerCredential: 100, perSecond: 2, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) {
      const slot = gate.enter('flood');
      expect('release' in slot).toBe(true);
      if ('release' in slot) slot.release();
    }
    expect(gate.enter('flood')).toMatchObject({ retryAfter: 1, refusal: { status: 429, reason: 'write_rate_exceeded', message: expect.stringContaining('credential flood') } });
    expect('release' in gate.enter('other')).toBe(true);
    now += 500; // one token back
    expect('release' in gate.enter('flood')).toBe(true);
    expect(gate.enter('flood')).toMatchObject({ refusal: { reason: 'write_rate_exceeded' } });
  });

  it('bounds the writes in progress per credential (429) and in all (503), and frees slots once answered', () => {
    const gate = new WriteGate({ concurrent: 3, concurrentPerCredential: 2, perSecond: 1000, burst: 1000 });
    const a1 = gate.enter('a');
    const a2 = gate.enter('a');
    expect(gate.enter('a')).toMatchObject({ refusal: { status: 429, reason: 'writes_in_progress' } });
    const b1 = gate.enter('b');
    expect(gate.enter('c')).toMatchObject({ refusal: { status: 503, reason: 'admin_busy' } });
    if ('release' in a1) {
      a1.release();
      a1.release(); // twice is once
    }
    expect('release' in gate.enter('c')).toBe(true);
    expect(gate.enter('d')).toMatchObject({ refusal: { reason: 'admin_busy' } });
    for (const slot of [a2, b1]) if ('release' in slot) slot.release();
  });
});
