import { describe, expect, it } from 'vitest';
import { parsedBodyOf, untypedBodyIsForm } from '../../../src/identity/body-params.ts';

describe('the kind of body a Content-Type announces, read as the most lenient stacks read it', () => {
  it('takes the media type up to the first ; , or space (PHP, Rack), in any case', () => {
    for (const value of ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'application/x-www-form-urlencoded,', 'application/x-www-form-urlencoded x',
      'application/x-www-form-urlencoded\tx', '  Application/X-WWW-Form-Urlencoded ;', 'multipart/form-data; boundary=b', 'multipart/form-data, boundary=b', 'multipart/form-data boundary=b',
      'MULTIPART/MIXED;boundary=b', 'multipart/related']) {
      expect(parsedBodyOf(value), value).toBe('form');
    }
  });

  it('finds json anywhere (Laravel isJson, Rails text/x-json), and media ranges', () => {
    for (const value of ['application/json', 'application/vnd.api+json', 'text/x-json', 'application/jsonrequest', 'text/plain; x=JSON', 'application/json,']) expect(parsedBodyOf(value), value).toBe('json');
    for (const value of ['*/*', 'application/*', '*/*; q=1']) expect(parsedBodyOf(value), value).toBe('any');
  });

  it('leaves other bodies alone', () => {
    for (const value of ['text/plain', 'application/octet-stream', 'application/x-www-form-urlencodedx', 'application/x-www-form', 'image/png', 'multipart', 'application/x-www-form-urlencoded-x', '']) {
      expect(parsedBodyOf(value), value).toBeNull();
    }
  });

  it('reads a POST body without Content-Type as a form (Rack), and nothing without a body', () => {
    expect(untypedBodyIsForm('POST', true)).toBe(true);
    expect(untypedBodyIsForm('POST', false)).toBe(false);
    expect(untypedBodyIsForm('PUT', true)).toBe(false);
    expect(untypedBodyIsForm(undefined, true)).toBe(false);
  });
});
