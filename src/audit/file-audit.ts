import { Buffer } from 'node:buffer';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { EventLog } from '../observability/logger.ts';
import { boundedEvent, checkCap, decodeEvent, encodeEvent, MAX_EVENT_BYTES, type AuditEvent, type AuditLog, type AuditPage, type AuditQuery, type NewAuditEvent } from './audit-log.ts';
import { formatSeq, parseSeq, RetentionIndex, type Indexed } from './memory-audit.ts';

export const DEFAULT_FILE_AUDIT_CAP = 100_000;

/** Bytes read per step while indexing the file on open. */
const SCAN_CHUNK = 1 << 20;

/** Where one event's line is: events stay on disk, only their place is held in memory. */
interface Located extends Indexed {
  readonly offset: number;
  /** Without the newline. */
  readonly length: number;
}

export interface FileAuditOptions {
  /** Events listed, in all (see RetentionIndex). The file itself is never rewritten. */
  readonly cap?: number;
  /** Events listed per account; default: `cap`. */
  readonly accountCap?: number;
  /** Told about lines skipped on open. */
  readonly logger?: EventLog;
}

/**
 * The audit trail as an append-only JSONL file: one event per line, each line fsync'd before its
 * append resolves. The file is never rewritten or truncated (that is what makes it an audit
 * trail; rotate it with the gateway stopped), so it grows; the events listed are those a
 * RetentionIndex of line offsets keeps (per account and in all), built on open.
 *
 * A crash can leave a partial last line. It is skipped, and the next append starts on a new line
 * so the fragment never swallows a good event; any other line that is not an event is skipped too.
 */
export class FileAuditLog implements AuditLog {
  readonly kind = 'file' as const;
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #index: RetentionIndex<Located>;
  readonly #reads = new Set<Promise<unknown>>();
  #seq: number;
  /** The file may not end in a newline (a partial line, a failed write): start the next line. */
  #newline: boolean;
  /** Appends run one at a time, so lines never interleave and ids follow file order. */
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(path: string, handle: FileHandle, index: RetentionIndex<Located>, seq: number, newline: boolean) {
    this.path = path;
    this.#handle = handle;
    this.#index = index;
    this.#seq = seq;
    this.#newline = newline;
  }

  /** Opens (creating it and its directory if needed) and indexes the file. */
  static async open(path: string, options: FileAuditOptions = {}): Promise<FileAuditLog> {
    const cap = checkCap(options.cap ?? DEFAULT_FILE_AUDIT_CAP, 'file');
    // Only where each line is stays in memory, so only the counts bound it.
    const index = new RetentionIndex<Located>({ cap, accountCap: checkCap(options.accountCap ?? cap, 'file per-account'), maxBytes: Number.POSITIVE_INFINITY });
    let handle: FileHandle;
    let created: boolean;
    try {
      await mkdir(dirname(path), { recursive: true });
      created = await stat(path).then(() => false, (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return true;
        throw error;
      });
      // Append mode: every write lands at the end, whatever else has the file open.
      handle = await open(path, 'a+', 0o600);
    } catch (error) {
      throw new Error(`cannot open the audit file ${path} (${codeOf(error)}): make its directory writable by the gateway, or point audit.path elsewhere`);
    }
    try {
      // A new file is durable only once its directory entry is.
      if (created) await syncDirectory(dirname(path));
      let seq = 0;
      let skipped = 0;
      const scanned = await scanLines(handle, (line, offset) => {
        const event = line.length === 0 ? null : decodeEvent(line.toString('utf8'));
        const lineSeq = event === null ? null : parseSeq(event.id);
        if (event === null || lineSeq === null) {
          if (line.length > 0) skipped++;
          return;
        }
        // A line out of sequence (edited by hand) is listed only if it keeps the index ordered;
        // either way no later id may repeat it.
        if (lineSeq > seq) index.push({ seq: lineSeq, account: event.account, offset, length: line.length, bytes: 0 });
        else skipped++;
        seq = Math.max(seq, lineSeq);
      });
      if (skipped > 0) options.logger?.warn({ path, skipped }, 'audit file lines skipped: not events in sequence (a partial write from a crash, or an edit by hand)');
      return new FileAuditLog(path, handle, index, seq, !scanned.endsWithNewline);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw new Error(`cannot read the audit file ${path} (${codeOf(error)}): check its permissions, or move it away to start a new one`);
    }
  }

  append(event: NewAuditEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`the audit log ${this.path} is closed: event ${event.action} for account ${event.account} was not recorded`));
    const run = this.#tail.then(() => this.#write(event));
    // The queue continues whatever this append's fate; its caller sees the failure.
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    if (this.#closed) throw new Error(`the audit log ${this.path} is closed`);
    const page = this.#index.page(query);
    const reading = Promise.all(page.items.map((item) => this.#read(item)));
    // close() waits for reads in flight rather than pulling the file from under them.
    this.#reads.add(reading);
    try {
      const events = await reading;
      return { events: events.filter((e): e is AuditEvent => e !== null), next: page.next };
    } finally {
      this.#reads.delete(reading);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    await Promise.allSettled(this.#reads);
    await this.#handle.close();
  }

  async #write(event: NewAuditEvent): Promise<void> {
    const seq = this.#seq + 1;
    // The same bound per event as every kind of log: larger snapshots are summarised.
    const line = encodeEvent(formatSeq(seq), boundedEvent(event, MAX_EVENT_BYTES));
    // Consumed even if the write fails: the line may have reached the disk anyway, and an id
    // must never appear twice.
    this.#seq = seq;
    const lead = this.#newline ? '\n' : '';
    const bytes = Buffer.from(`${lead}${line}\n`, 'utf8');
    try {
      const { size } = await this.#handle.stat();
      // Until this line is known whole, assume the file ends mid-line.
      this.#newline = true;
      await this.#handle.writeFile(bytes);
      await this.#handle.sync();
      this.#newline = false;
      this.#index.push({ seq, account: event.account, offset: size + lead.length, length: bytes.length - lead.length - 1, bytes: 0 });
    } catch (error) {
      throw new Error(`audit event ${event.action} for account ${event.account} may not have been recorded: writing ${this.path} failed (${codeOf(error)}); free disk space or fix permissions`);
    }
  }

  /** The event at `item`, or null if the file no longer holds it there (changed by hand). */
  async #read(item: Located): Promise<AuditEvent | null> {
    const buffer = Buffer.allocUnsafe(item.length);
    const { bytesRead } = await this.#handle.read(buffer, 0, item.length, item.offset);
    if (bytesRead !== item.length) return null;
    const event = decodeEvent(buffer.toString('utf8'));
    return event !== null && parseSeq(event.id) === item.seq ? event : null;
  }
}

/**
 * Calls `visit` with every line (without its newline) and its byte offset, the last one even
 * without a newline. Works on bytes, not text: a partial write can cut a character in half, and
 * offsets must stay exact.
 */
async function scanLines(handle: FileHandle, visit: (line: Buffer, offset: number) => void): Promise<{ endsWithNewline: boolean }> {
  const chunk = Buffer.allocUnsafe(SCAN_CHUNK);
  let position = 0;
  let carry: Buffer = Buffer.alloc(0);
  let carryAt = 0;
  for (;;) {
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    const data = chunk.subarray(0, bytesRead);
    let from = 0;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a, from)) {
      const piece = data.subarray(from, nl);
      if (carry.length === 0) visit(piece, position + from);
      else visit(Buffer.concat([carry, piece]), carryAt);
      carry = Buffer.alloc(0);
      from = nl + 1;
    }
    if (from < bytesRead) {
      if (carry.length === 0) carryAt = position + from;
      // Copied: the chunk buffer is reused by the next read.
      carry = Buffer.concat([carry, data.subarray(from)]);
    }
    position += bytesRead;
  }
  if (carry.length > 0) visit(carry, carryAt);
  return { endsWithNewline: carry.length === 0 };
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
