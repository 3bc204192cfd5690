import { describe, expect, it } from 'vitest';
import { compileExemptMatcher } from '../../../src/gateway/exempt.ts';

describe('exempt paths', () => {
  const exempt = compileExemptMatcher(['/health', '/status/live']);

  it.each([
    ['/health', true],
    ['/health?verbose=1', true],
    ['/health/deep', true],
    ['/status/live', true],
    ['/healthz', false],
    ['/health.', false],
    ['/HEALTH', false],
    ['/status', false],
    ['//health', false],
    ['/./health', false],
    ['/health/../v1/Account/AC1', false],
    ['/health/%2e%2e/v1', false],
    ['/health%2f..%2fv1', false],
    ['/health/..', false],
    ['/health\\..\\v1', false],
    ['/health;/../v1', false],
    ['health', false],
    ['*', false],
  ])('%s → %s', (url, expected) => {
    expect(exempt(url)).toBe(expected);
  });

  it('exempts nothing when no path is configured', () => {
    expect(compileExemptMatcher([])('/health')).toBe(false);
  });
});
