import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../../src/observability/redact-url.ts';

describe('redactUrl', () => {
  it.each([
    ['/v1/x', '/v1/x'],
    ['/v1/x?account_id=AC1', '/v1/x?account_id=AC1'],
    ['/v1/x?api_key=s3cret&a=1', '/v1/x?api_key=[REDACTED]&a=1'],
    ['/v1/x?a=1&TOKEN=s3cret', '/v1/x?a=1&TOKEN=[REDACTED]'],
    ['/v1/x?access%5Ftoken=s3cret', '/v1/x?access%5Ftoken=[REDACTED]'],
    ['/v1/x?password', '/v1/x?password=[REDACTED]'],
    ['/v1/x?%zz=1&key=s3cret', '/v1/x?%zz=1&key=[REDACTED]'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});
