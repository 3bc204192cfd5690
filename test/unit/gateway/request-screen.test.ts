import { describe, expect, it } from 'vitest';
import { compileRequestScreen } from '../../../src/gateway/request-screen.ts';

const screen = compileRequestScreen({ credentialHeaders: ['x-auth-id', 'authorization'], underscores: 'pass' });
const reasonOf = (headers: readonly string[], url = '/v1/x'): string | null => screen(url, headers)?.reason ?? null;

describe('request screen', () => {
  it('passes ordinary requests, and names with _ that the gateway neither reads nor writes', () => {
    expect(reasonOf(['Host', 'h', 'X-Auth-ID', 'AC1', 'Accept', '*/*', 'Connection', 'keep-alive'])).toBeNull();
    expect(reasonOf(['Host', 'h', 'X_Custom_Thing', '1', 'x.trace.id', '2'])).toBeNull();
  });

  it('refuses every folded spelling of a header the gateway reads or writes', () => {
    const names = ['X_Auth_ID', 'x_auth_id', 'X.Auth.ID', 'X-Auth_ID', 'x_auth.id', 'X_Forwarded_For', 'x_real_ip', 'X.Real.IP', 'X_Request_Id',
      'X_Forwarded_Proto', 'X_Forwarded_Host', 'X_Forwarded_Port', 'X-Forwarded-Custom_Thing', 'True_Client_IP', 'client_ip', 'CF_Connecting_IP', 'X_Cluster_Client_IP'];
    for (const name of names) expect(reasonOf(['Host', 'h', name, 'AC1']), name).toBe('ambiguous_header');
  });

  it('refuses a Connection header naming what the gateway reads or writes, in any spelling', () => {
    for (const value of ['close, X-Auth-ID', 'X_Auth_ID', 'keep-alive,authorization', ' Upgrade ,\tx-forwarded-for', 'x-real-ip', 'Forwarded', 'host', 'X-Request-Id', 'x-forwarded-port', 'true-client-ip']) {
      expect(reasonOf(['Host', 'h', 'Connection', value]), value).toBe('invalid_connection_header');
    }
    expect(reasonOf(['Host', 'h', 'connection', 'close, x-drop-me', 'CONNECTION', 'keep-alive'])).toBeNull();
  });

  it('refuses a second Host header and a fragment in the target', () => {
    expect(reasonOf(['Host', 'a', 'host', 'b'])).toBe('invalid_host');
    expect(reasonOf(['Host', 'a'], '/v1/x?a=1#&account_id=AC1')).toBe('invalid_request_target');
  });

  it('refuses other names with _ only when configured to', () => {
    const strict = compileRequestScreen({ credentialHeaders: [], underscores: 'refuse' });
    expect(strict('/x', ['Host', 'h', 'X_Custom', '1'])?.reason).toBe('invalid_header_name');
    expect(strict('/x', ['Host', 'h', 'x.custom', '1'])).toBeNull();
    // Without a header strategy X-Auth-ID is nothing to the gateway: its alias is an ordinary name.
    expect(strict('/x', ['Host', 'h', 'X-Auth_ID', '1'])?.reason).toBe('invalid_header_name');
    expect(compileRequestScreen({ credentialHeaders: [], underscores: 'pass' })('/x', ['Host', 'h', 'X_Auth_ID', '1'])).toBeNull();
  });
});
