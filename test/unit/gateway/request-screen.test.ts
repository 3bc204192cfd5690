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

  it('refuses a path that URL parsers read as a host name and a path', () => {
    for (const url of ['//evil/v1/Account/AC1/Call', '/\\evil/v1/Account/AC1/Call', '\\evil/v1/x', '//evil@x/v1/x', '//127.0.0.1:1/v1/x', '//', 'http://h//evil/v1/x', 'http://h/\\evil/v1/x', 'http://h\\evil/v1/x']) {
      expect(reasonOf(['Host', 'a'], url), url).toBe('invalid_request_target');
    }
    for (const url of ['/', '/v1//x', '/v1/\\x', 'http://h/v1/x', 'http://h?x=//y', '*']) expect(reasonOf(['Host', 'a'], url), url).toBeNull();
  });

  it('refuses client-address names in folded spellings, and passes other underscored names', () => {
    for (const name of ['HTTP_CLIENT_IP', 'HTTP_X_FORWARDED_FOR', 'Fly_Client_IP', 'DO_Connecting_IP', 'X_Vercel_Forwarded_For', 'CloudFront_Viewer_Address', 'wl_proxy_client_ip', 'x.coming.from']) {
      expect(reasonOf(['Host', 'h', name, '127.0.0.2']), name).toBe('ambiguous_header');
    }
    expect(reasonOf(['Host', 'h', 'X_Ship_Date', '1', 'x_tip', '2'])).toBeNull();
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
