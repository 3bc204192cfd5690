import { Agent, request } from 'node:http';

/**
 * Requests from one loopback source address over one keep-alive connection: polling and
 * steady traffic then cost no handshake each. Resolves with the status of a request made as an
 * account (X-Auth-ID).
 */
export class Caller {
  readonly #url: string;
  readonly #agent: Agent;

  constructor(url: string, localAddress: string) {
    this.#url = url;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress } as ConstructorParameters<typeof Agent>[0]);
  }

  status(account: string, path = `/v1/Account/${account}/Call`): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.#url}${path}`, { agent: this.#agent, headers: { 'x-auth-id': account }, timeout: 5_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
