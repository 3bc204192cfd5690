import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay between Redis clients (a gateway replica) and a real redis-server, on loopback,
 * that injects faults on command: freeze a path (bytes held, connections open), drop it (both
 * sides closed), refuse new connections, and, for one connection, act right at a command the
 * client sends (the RESP stream from client to server is parsed, so "right after EVALSHA was
 * sent" means exactly that and nothing around it):
 *
 *   lose-reply     forward the command, let Redis run it, and close the connection in place of
 *                  its reply: the client cannot tell whether it ran (it did)
 *   swallow        close the connection instead of forwarding the command: the client cannot tell
 *                  either (it did not run)
 *   freeze-after   forward the command, then forward nothing more either way (a frozen path)
 *   freeze-before  forward nothing from the command on (it never reaches Redis)
 *   hold-reply     forward the command and what follows, but hold everything Redis sends back
 *                  for `holdMs` (a server that stalls past the client's timeout, then answers)
 *
 * Every connection is told apart by the commands seen on it: one that sends SUBSCRIBE is the
 * subscriber, the others command connections.
 */

export type Role = 'command' | 'subscriber';
export type CommandFault = 'lose-reply' | 'swallow' | 'freeze-after' | 'freeze-before' | 'hold-reply' | 'none';

export interface RelayConnection {
  readonly id: number;
  readonly role: Role;
  /** Command names seen from the client (upper case), the last 200. */
  readonly commands: readonly string[];
  /** Bytes forwarded client → server and server → client. */
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export type Which = Role | 'all' | ((connection: RelayConnection) => boolean);

export interface Relay {
  readonly port: number;
  readonly url: string;
  connections(): readonly RelayConnection[];
  /** Every command name clients sent on connections of `which` (frozen ones too), in order (the last 10,000). */
  commandsSent(which?: Which): readonly string[];
  /** Holds every byte both ways on the chosen connections (kept, delivered on resume). */
  pause(which?: Which): void;
  resume(which?: Which): void;
  /** Forwards nothing either way on the chosen connections, and forgets what arrives. */
  freeze(which?: Which): void;
  /** Closes the chosen connections, both sides. */
  drop(which?: Which): void;
  /** While true, new connections are closed as they arrive (Redis unreachable). */
  refuse(on: boolean): void;
  /** New connections are frozen from the start while true (a server that accepts and never answers). */
  freezeNew(on: boolean): void;
  /**
   * Arms `fault` for the next command named `name` (e.g. 'EVALSHA') on a connection of `which`;
   * resolves once it has fired, with the connection it fired on ('none': only tells).
   */
  onCommand(name: string, fault: CommandFault, which?: Which, holdMs?: number): Promise<RelayConnection>;
  /** Forgets every fault armed and not fired yet. */
  disarm(): void;
  close(): Promise<void>;
}

const MAX_COMMANDS_KEPT = 200;

interface Armed {
  readonly name: string;
  readonly fault: CommandFault;
  readonly holdMs: number;
  readonly which: Which;
  readonly fired: (connection: RelayConnection) => void;
}

class Link implements RelayConnection {
  readonly id: number;
  role: Role = 'command';
  readonly commands: string[] = [];
  bytesUp = 0;
  bytesDown = 0;
  paused = false;
  frozen = false;
  /** Set by a lose-reply fault: the next bytes from Redis are the reply to lose. */
  loseReply = false;
  /** Set by a hold-reply fault: bytes from Redis are held until it is cleared. */
  holdDown = false;
  readonly client: Socket;
  readonly server: Socket;
  readonly parser = new RespCommands();
  readonly held: { up: Buffer[]; down: Buffer[] } = { up: [], down: [] };

  constructor(id: number, client: Socket, server: Socket) {
    this.id = id;
    this.client = client;
    this.server = server;
  }

  close(): void {
    this.client.destroy();
    this.server.destroy();
  }
}

export async function startRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<Relay> {
  const links = new Set<Link>();
  const sent: { role: () => Role; link: Link; name: string }[] = [];
  let armed: Armed[] = [];
  let nextId = 1;
  let refusing = false;
  let freezingNew = false;

  const select = (which: Which = 'all'): Link[] => [...links].filter((link) => which === 'all' || (typeof which === 'function' ? which(link) : link.role === which));

  const toServer = (link: Link, data: Buffer): void => {
    if (link.frozen) return;
    if (link.paused) {
      link.held.up.push(data);
      return;
    }
    link.bytesUp += data.length;
    link.server.write(data);
  };

  const fromClient = (link: Link, data: Buffer): void => {
    // Cut the chunk at command boundaries so a fault can act between two commands. A frozen
    // path forwards nothing, but what the client tried to send is still counted.
    let start = 0;
    for (const { name, begin, end } of link.parser.push(data)) {
      link.commands.push(name);
      if (link.commands.length > MAX_COMMANDS_KEPT) link.commands.shift();
      sent.push({ role: () => link.role, link, name });
      if (sent.length > 10_000) sent.shift();
      if (name === 'SUBSCRIBE' || name === 'PSUBSCRIBE' || name === 'SSUBSCRIBE') link.role = 'subscriber';
      if (link.frozen) continue;
      const fault = armed.find((a) => a.name === name && select(a.which).includes(link));
      if (fault === undefined) continue;
      armed = armed.filter((a) => a !== fault);
      switch (fault.fault) {
        case 'freeze-before':
        case 'swallow':
          toServer(link, data.subarray(start, begin));
          if (fault.fault === 'swallow') link.close();
          else link.frozen = true;
          fault.fired(link);
          return;
        case 'freeze-after':
          toServer(link, data.subarray(start, end));
          link.frozen = true;
          fault.fired(link);
          return;
        case 'hold-reply':
          link.holdDown = true;
          setTimeout(() => {
            link.holdDown = false;
            for (const held of link.held.down.splice(0)) fromServer(link, held);
          }, fault.holdMs).unref();
          fault.fired(link);
          continue;
        case 'none':
          fault.fired(link);
          continue;
        case 'lose-reply':
          toServer(link, data.subarray(start, end));
          link.loseReply = true;
          // Nothing after the command goes to Redis: the connection ends with its reply.
          link.frozen = true;
          fault.fired(link);
          return;
      }
      start = end;
    }
    if (start < data.length) toServer(link, data.subarray(start));
  };

  const fromServer = (link: Link, data: Buffer): void => {
    if (link.loseReply) {
      link.close();
      return;
    }
    if (link.frozen) return;
    if (link.paused || link.holdDown) {
      link.held.down.push(data);
      return;
    }
    link.bytesDown += data.length;
    link.client.write(data);
  };

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect({ port: targetPort, host: targetHost });
    const link = new Link(nextId++, client, upstream);
    link.frozen = freezingNew;
    links.add(link);
    const gone = (): void => {
      links.delete(link);
      link.close();
    };
    client.on('data', (data: Buffer) => fromClient(link, data));
    upstream.on('data', (data: Buffer) => fromServer(link, data));
    client.on('close', gone);
    upstream.on('close', gone);
    client.on('error', gone);
    upstream.on('error', gone);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    connections: () => [...links],
    commandsSent: (which = 'all') => sent.filter((s) => which === 'all' || (typeof which === 'function' ? which(s.link) : s.role() === which)).map((s) => s.name),
    pause: (which) => {
      for (const link of select(which)) link.paused = true;
    },
    resume: (which) => {
      for (const link of select(which)) {
        link.paused = false;
        for (const data of link.held.up.splice(0)) toServer(link, data);
        if (!link.holdDown) for (const data of link.held.down.splice(0)) fromServer(link, data);
      }
    },
    freeze: (which) => {
      for (const link of select(which)) link.frozen = true;
    },
    drop: (which) => {
      for (const link of select(which)) link.close();
    },
    refuse: (on) => {
      refusing = on;
    },
    freezeNew: (on) => {
      freezingNew = on;
    },
    onCommand: (name, fault, which = 'all', holdMs = 0) => new Promise((resolve) => {
      armed.push({ name: name.toUpperCase(), fault, which, holdMs, fired: resolve });
    }),
    disarm: () => {
      armed = [];
    },
    close: async () => {
      for (const link of links) link.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Splits a client's RESP stream into commands (arrays of bulk strings, as every Redis client
 * sends them): `push` returns, for each command completed by the new bytes, its name and where it
 * begins and ends in those bytes (begin 0 for one that started in an earlier chunk).
 */
class RespCommands {
  #buffer: Buffer = Buffer.alloc(0);

  push(data: Buffer): { name: string; begin: number; end: number }[] {
    // Bytes of the buffer that came before this chunk.
    const carried = this.#buffer.length;
    this.#buffer = carried === 0 ? data : Buffer.concat([this.#buffer, data]);
    const out: { name: string; begin: number; end: number }[] = [];
    let offset = -carried; // where the buffer's start lies in `data`
    for (;;) {
      const parsed = parseCommand(this.#buffer);
      if (parsed === null) break;
      out.push({ name: parsed.name, begin: Math.max(0, offset), end: offset + parsed.length });
      offset += parsed.length;
      this.#buffer = this.#buffer.subarray(parsed.length);
    }
    return out;
  }
}

function parseCommand(buf: Buffer): { name: string; length: number } | null {
  if (buf.length === 0) return null;
  if (buf[0] !== 0x2a /* * */) throw new Error(`the relay expects RESP arrays from clients, got byte ${buf[0]}`);
  const line = (at: number): { value: number; next: number } | null => {
    const cr = buf.indexOf('\r\n', at);
    return cr < 0 ? null : { value: Number(buf.toString('latin1', at + 1, cr)), next: cr + 2 };
  };
  const head = line(0);
  if (head === null) return null;
  let at = head.next;
  let name = '';
  for (let i = 0; i < head.value; i++) {
    const size = line(at);
    if (size === null) return null;
    const end = size.next + size.value + 2;
    if (end > buf.length) return null;
    if (i === 0) name = buf.toString('latin1', size.next, size.next + size.value).toUpperCase();
    at = end;
  }
  return { name, length: at };
}
