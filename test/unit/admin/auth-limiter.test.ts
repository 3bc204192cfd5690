import { describe, expect, it } from 'vitest';
import { AuthLimiter } from '../../../src/admin/auth-limiter.ts';
import { sourceOf } from '../../../src/ip/source.ts';

describe('AuthLimiter', () => {
  it('counts an IPv4 address (mapped or not) alone and an IPv6 address by its /64', () => {
    expect(sourceOf('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(sourceOf('127.0.0.1')).toBe('127.0.0.1');
    expect(sourceOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    const limiter = new AuthLimiter({ maxFailures: 2, now: () => 0 });
    limiter.fail('2001:db8:1:2::1');
    limiter.fail('2001:db8:1:2::ffff');
    expect(limiter.blockedFor('2001:db8:1:2:1:2:3:4')).toBe(60);
    expect(limiter.blockedFor('2001:db8:1:3::1')).toBe(0);
  });

  it('tracks at most maxTracked sources, forgetting the one whose window began first', () => {
    const limiter = new AuthLimiter({ maxFailures: 1, maxTracked: 3, now: () => 0 });
    for (const source of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) limiter.fail(source);
    expect(limiter.size).toBe(3);
    expect(limiter.blockedFor('10.0.0.1')).toBe(0);
    expect(['10.0.0.2', '10.0.0.3', '10.0.0.4'].map((s) => limiter.blockedFor(s))).toEqual([60, 60, 60]);
  });

  it('lifts the block when the window has passed', () => {
    let clock = 0;
    const limiter = new AuthLimiter({ maxFailures: 2, windowMs: 10_000, now: () => clock });
    expect([limiter.fail('10.0.0.1'), limiter.fail('10.0.0.1')]).toEqual([1, 2]);
    clock = 2_500;
    expect(limiter.blockedFor('10.0.0.1')).toBe(8);
    clock = 10_000;
    expect(limiter.blockedFor('10.0.0.1')).toBe(0);
    expect(limiter.fail('10.0.0.1')).toBe(1);
  });
});
