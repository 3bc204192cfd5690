import { describe, expect, it } from 'vitest';
import { compileHostCheck } from '../../../src/admin/host-check.ts';

describe('admin Host check', () => {
  const check = compileHostCheck(['admin.example.com', '*.svc.cluster.local'], () => ['10.244.1.7', 'fd00::7']);
  const reason = (host: string | undefined): string | null => check(host)?.reason ?? null;

  it('accepts loopback, the machine\'s own addresses and the configured names, with or without a port', () => {
    for (const host of ['localhost', 'LOCALHOST:9090', 'app.localhost', '127.0.0.1:9090', '127.8.9.10', '[::1]:9090', '[::ffff:127.0.0.1]', '10.244.1.7:9090', '[fd00::7]:9090',
      'admin.example.com', 'Admin.Example.Com.:443', 'api-allowgate-admin.ns.svc.cluster.local']) {
      expect(reason(host), host).toBeNull();
    }
  });

  it('refuses any other name (a rebound DNS name), address or malformed Host with 421 unknown_host, and no Host with 400', () => {
    for (const host of ['evil.example', 'evil.example:9090', 'admin.example.com.evil.example', 'xadmin.example.com', 'svc.cluster.local', '10.244.1.8', '[fd00::8]', '0.0.0.0',
      'admin.example.com:99999', 'a b', '[::1', '[::1]x', 'user@localhost']) {
      expect(check(host), host).toMatchObject({ status: 421, reason: 'unknown_host' });
    }
    expect(reason(undefined)).toBe('missing_host');
    expect(reason('')).toBe('missing_host');
  });
});
