/**
 * Fair use of the upstream pool. Every forwarded request takes one of `connections` slots (one
 * upstream connection each, HTTP/1.1 without pipelining); past them it waits in a FIFO queue for at
 * most `queueTimeoutMs`. No client address and no account may have more than its cap in the
 * gateway at once, waiting or running: past it the request is turned away at once, so one caller
 * (or one tenant) cannot take the connections every other caller needs.
 *
 * The per-key counts only hold keys with a request in flight, so they never have more entries
 * than there are requests in flight (itself bounded by limits.maxConnections).
 */

export interface AdmissionLimits {
  /** Upstream connections: requests that run at once. */
  readonly connections: number;
  /** Requests one client address may have in flight (waiting or running). */
  readonly perClient: number;
  /** Requests one account may have in flight (anonymous requests count as one account). */
  readonly perAccount: number;
  /** Longest wait for a slot. */
  readonly queueTimeoutMs: number;
}

/** One request's place: what Admission needs of it. */
export interface Ticket {
  readonly client: string;
  readonly account: string;
  /** Given a slot. */
  run(): void;
  /** Waited longer than queueTimeoutMs: no longer queued, and must answer its caller. */
  expire(): void;
  /** Checked while running by `sweep` (the body-idle watch). */
  watch(now: number): void;
  /** Set by Admission. */
  state: TicketState;
  queuedAt: number;
}

/** Where a ticket is: not yet admitted, waiting, holding a slot, over. */
export const TicketState = { New: 0, Queued: 1, Running: 2, Done: 3 } as const;
export type TicketState = (typeof TicketState)[keyof typeof TicketState];

export type Turnaway = 'client' | 'account';

export class Admission {
  readonly limits: AdmissionLimits;
  readonly #byClient = new Map<string, number>();
  readonly #byAccount = new Map<string, number>();
  readonly #running = new Set<Ticket>();
  #queue: Ticket[] = [];
  #head = 0;
  #queued = 0;

  constructor(limits: AdmissionLimits) {
    this.limits = limits;
  }

  /** Admits a request (it runs now, or waits), or names the cap it would exceed. */
  admit(ticket: Ticket, now: number): Turnaway | null {
    const clientCount = this.#byClient.get(ticket.client) ?? 0;
    if (clientCount >= this.limits.perClient) return 'client';
    const accountCount = this.#byAccount.get(ticket.account) ?? 0;
    if (accountCount >= this.limits.perAccount) return 'account';
    this.#byClient.set(ticket.client, clientCount + 1);
    this.#byAccount.set(ticket.account, accountCount + 1);
    if (this.#running.size < this.limits.connections && this.#queued === 0) {
      this.#start(ticket);
    } else {
      ticket.state = TicketState.Queued;
      ticket.queuedAt = now;
      this.#queue.push(ticket);
      this.#queued++;
    }
    return null;
  }

  /** The request is over (answered, failed or abandoned), wherever it was: its slot and counts go. */
  release(ticket: Ticket): void {
    const state = ticket.state;
    if (state === TicketState.Done || state === TicketState.New) return;
    ticket.state = TicketState.Done;
    decrement(this.#byClient, ticket.client);
    decrement(this.#byAccount, ticket.account);
    if (state === TicketState.Queued) {
      // Left in the array and skipped when reached: removal from the middle would cost a scan.
      this.#queued--;
      return;
    }
    this.#running.delete(ticket);
    this.#next();
  }

  /** Expires requests that waited too long and lets running ones check their progress. */
  sweep(now: number): void {
    const deadline = now - this.limits.queueTimeoutMs;
    // FIFO: the oldest waiters are at the head, so the scan stops at the first one still in time.
    while (this.#head < this.#queue.length) {
      const ticket = this.#queue[this.#head]!;
      if (ticket.state === TicketState.Queued && ticket.queuedAt > deadline) break;
      this.#head++;
      if (ticket.state !== TicketState.Queued) continue;
      this.release(ticket);
      ticket.expire();
    }
    this.#compact();
    for (const ticket of this.#running) ticket.watch(now);
  }

  get running(): number {
    return this.#running.size;
  }

  get queued(): number {
    return this.#queued;
  }

  /** Keys with a request in flight (for tests and the bounds table: never above requests in flight). */
  get trackedKeys(): number {
    return this.#byClient.size + this.#byAccount.size;
  }

  #start(ticket: Ticket): void {
    ticket.state = TicketState.Running;
    this.#running.add(ticket);
    ticket.run();
  }

  #next(): void {
    while (this.#running.size < this.limits.connections && this.#head < this.#queue.length) {
      const ticket = this.#queue[this.#head++]!;
      if (ticket.state !== TicketState.Queued) continue;
      this.#queued--;
      this.#start(ticket);
    }
    this.#compact();
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const n = counts.get(key)! - 1;
  if (n === 0) counts.delete(key);
  else counts.set(key, n);
}

/** A cap from a share of the connections: at least one request. */
export function capOf(connections: number, share: number): number {
  return Math.max(1, Math.floor(connections * share));
}
