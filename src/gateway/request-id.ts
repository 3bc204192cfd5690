import { randomUUID } from 'node:crypto';

const ACCEPTABLE = /^[A-Za-z0-9._:@-]{1,128}$/;

/** A caller's X-Request-Id is kept when it is a plain token (so traces join up), else replaced. */
export function requestIdFrom(rawHeaders: readonly string[]): string {
  return callerRequestId(rawHeaders) ?? randomUUID();
}

/** The caller's X-Request-Id when it is a plain token; undefined when absent or not one. */
export function callerRequestId(rawHeaders: readonly string[]): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 12 && rawHeaders[i]!.toLowerCase() === 'x-request-id') {
      const value = rawHeaders[i + 1]!;
      return ACCEPTABLE.test(value) ? value : undefined;
    }
  }
  return undefined;
}
