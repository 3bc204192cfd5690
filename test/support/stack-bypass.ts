import { expect, it } from 'vitest';
import { gatewayAround, type Around, type Upstream } from './gateway-around.ts';
import type { GatewayProcess } from './gateway-process.ts';
import { send } from './http.ts';

/** The address the locked account's list allows, and one it does not: every attack comes from the second. */
export const OFFICE = '127.0.0.2';
export const STRANGER = '127.0.0.3';

/** An upstream application that records what it read from each request. */
export interface RecordingUpstream<Seen> extends Upstream {
  /** What the application read from every request, in order. */
  seen(): Seen[];
}

/** A request that some upstream stack reads as a credential, account or address the gateway must check. */
export interface StackAttack<Kind extends string, Seen> {
  readonly name: string;
  /** The stacks that read it so. */
  readonly stacks: readonly Kind[];
  /** Default /v1/x. */
  readonly target?: string;
  /** Default POST with a body, GET without. */
  readonly method?: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: string;
  /** What the application read: true when what the attack put there took effect. */
  readonly read: (seen: Seen) => boolean;
  readonly status: number;
  readonly reason: string;
}

export interface StackBypassSuite<Kind extends string, Seen> {
  readonly kind: Kind;
  readonly start: () => Promise<RecordingUpstream<Seen>>;
  /** The gateway's configuration file. */
  readonly config: string;
  /** Admin calls made before the first case (lists, keys). */
  readonly setup: (gw: GatewayProcess) => Promise<void>;
  readonly attacks: readonly StackAttack<Kind, Seen>[];
  /** How the stack reads an attack, for a failure's message ("as the locked account's"). */
  readonly readsAs: string;
}

/**
 * Starts the stack and a gateway in front of it around the enclosing describe, and adds one case
 * for each attack on this stack: sent straight to the stack, the stack reads it (the attack is
 * real there); the same request through the gateway is refused with the attack's status and
 * reason and never reaches the stack. Returns the running pair for the suite's other cases.
 */
export function stackBypassCases<Kind extends string, Seen>(suite: StackBypassSuite<Kind, Seen>): Around<RecordingUpstream<Seen>> {
  const around = gatewayAround({ start: suite.start, config: suite.config, setup: suite.setup });

  const mine = suite.attacks.filter((a) => a.stacks.includes(suite.kind));
  it.each(mine.map((a) => [a.name, a] as const))('%s: read by the stack directly, refused by the gateway', async (_name, a) => {
    const request = {
      target: a.target ?? '/v1/x',
      method: a.method ?? (a.body === undefined ? 'GET' : 'POST'),
      headers: [['Host', 'api.example'], ...(a.headers ?? [])] as [string, string][],
      ...(a.body === undefined ? {} : { body: a.body }),
      localAddress: STRANGER,
    };
    const { gw, upstream } = around;
    const direct = await send(upstream.url, request);
    expect(direct.status).toBe(200);
    expect(a.read(upstream.seen().at(-1)!), `${suite.kind} reads ${a.name} ${suite.readsAs}`).toBe(true);

    const before = upstream.seen().length;
    const reply = await send(gw.url, request);
    expect({ status: reply.status, reason: reply.json()['reason'] }).toEqual({ status: a.status, reason: a.reason });
    expect(upstream.seen().slice(before), 'reached the upstream').toEqual([]);
  });

  return around;
}
