import { foldParamName } from '../http/param-name.ts';

/** Query parameters whose values are secrets: logged as `[REDACTED]`, never in clear. */
const SECRET_PARAMS = new Set<string>([
  'api_key', 'apikey', 'key', 'token', 'access_token', 'bearer_token', 'auth_token', 'id_token', 'refresh_token',
  'password', 'passwd', 'secret', 'client_secret', 'signature', 'sig', 'x-auth-token',
]);

/**
 * Adds parameters the configuration makes secret (the api-key strategy's query parameter, bearer
 * token parameters), for every log line of this process from now on.
 */
export function addSecretParams(names: Iterable<string>): void {
  for (const name of names) SECRET_PARAMS.add(name.toLowerCase());
}

/**
 * The request target as it may be logged: path kept, secret query values replaced. Works on the
 * raw text (no URL parsing) so malformed targets are logged as safely as well-formed ones.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    let name = rawName;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      // Undecodable names are compared as written.
    }
    // Spellings frameworks fold into a secret parameter (api.key, api_key[]) are secrets too.
    if (SECRET_PARAMS.has(name.toLowerCase()) || SECRET_PARAMS.has(foldParamName(name))) parts[i] = `${rawName}=[REDACTED]`;
  }
  return `${url.slice(0, q)}?${parts.join('&')}`;
}
