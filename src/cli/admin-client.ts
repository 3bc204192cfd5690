import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from './args.ts';
import { DEFAULT_ADMIN_URL } from './spec.ts';

/** Where the admin API is and how to authenticate to it. */
export interface Connection {
  /** Without a trailing slash. */
  readonly url: string;
  readonly token: string | null;
  /** Where the token came from, for hints when it is refused. */
  readonly tokenSource: string | null;
}

/** Relative to the working directory: where the gateway generates its token by default. */
export const TOKEN_FILE = 'data/admin-token';

/** --url / ALLOWGATE_ADMIN_URL / default; --token / ALLOWGATE_ADMIN_TOKEN / data/admin-token. */
export function resolveConnection(options: { url?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv, cwd: string): Connection {
  const raw = options.url ?? nonEmpty(env['ALLOWGATE_ADMIN_URL']) ?? DEFAULT_ADMIN_URL;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new UsageError(`the admin URL '${raw}' is not a URL, e.g. ${DEFAULT_ADMIN_URL}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`the admin URL '${raw}' must start with http:// or https://`);
  if (parsed.search !== '' || parsed.hash !== '') throw new UsageError(`the admin URL '${raw}' must not have a query or fragment`);
  const url = parsed.href.replace(/\/+$/, '');

  if (options.token !== undefined) return { url, token: options.token, tokenSource: '--token' };
  const fromEnv = nonEmpty(env['ALLOWGATE_ADMIN_TOKEN']);
  if (fromEnv !== undefined) return { url, token: fromEnv, tokenSource: 'ALLOWGATE_ADMIN_TOKEN' };
  const file = resolve(cwd, TOKEN_FILE);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token !== '') return { url, token, tokenSource: file };
  }
  return { url, token: null, tokenSource: null };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** A command failed for a reason worth one line on stderr (exit 1), not a stack trace. */
export class Failure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Failure';
  }
}

/** The API refused: its `{error, code, reason}`, or what can be said of a non-JSON answer. */
export class ApiError extends Failure {
  readonly status: number;
  readonly reason: string;

  constructor(message: string, status: number, reason: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
  }
}

/** Nothing answered at the URL (refused, unknown host, timeout…). */
export class UnreachableError extends Failure {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  /** The body parsed as JSON; null for an empty body (204). */
  readonly body: unknown;
}

export type Query = Readonly<Record<string, string | undefined>>;

export interface RequestOptions {
  readonly query?: Query;
  /** A JSON value, or raw text with `contentType`. */
  readonly json?: unknown;
  readonly text?: string;
  readonly contentType?: string;
}

const TIMEOUT_MS = 30_000;
/** Upper bound on pages followed, against a server that keeps answering with a cursor. */
const MAX_PAGES = 10_000;

export function pathOf(...segments: readonly string[]): string {
  return segments.map((s) => `/${encodeURIComponent(s)}`).join('');
}

/** The admin API over HTTP with the global fetch. Every non-2xx answer becomes an ApiError. */
export class AdminClient {
  readonly connection: Connection;

  constructor(connection: Connection) {
    this.connection = connection;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
    const url = this.urlOf(path, options.query);
    const headers: Record<string, string> = { accept: 'application/json, text/csv;q=0.9, */*;q=0.1' };
    if (this.connection.token !== null) headers['authorization'] = `Bearer ${this.connection.token}`;
    let body: string | undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    } else if (options.text !== undefined) {
      body = options.text;
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    }
    let response: Response;
    try {
      response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new UnreachableError(unreachableMessage(this.connection.url, error));
    }
    const text = await response.text();
    const contentType = response.headers.get('content-type') ?? '';
    let parsed: unknown = null;
    if (text !== '' && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (!response.ok) throw apiError(response, parsed, text, method, url);
    return { status: response.status, contentType, text, body: parsed };
  }

  /** GET that follows `next` cursors, gathering the `key` array of every page. */
  async pages(path: string, key: string, query: Query = {}): Promise<{ first: Record<string, unknown>; items: unknown[]; versions: Set<unknown> }> {
    let first: Record<string, unknown> | null = null;
    const items: unknown[] = [];
    const versions = new Set<unknown>();
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = await this.request('GET', path, { query: { ...query, cursor } });
      const body = reply.body;
      const list = isObject(body) ? body[key] : undefined;
      if (!isObject(body) || !Array.isArray(list)) throw new Failure(`unexpected answer from GET ${path}: no '${key}' list`);
      first ??= body;
      items.push(...(list as unknown[]));
      if ('version' in body) versions.add(body['version']);
      const next = body['next'];
      if (typeof next !== 'string' || next === '') return { first, items, versions };
      if (seen.has(next)) throw new Failure(`GET ${path} answered the cursor '${next}' twice; stopped following it`);
      seen.add(next);
      cursor = next;
    }
    throw new Failure(`GET ${path} still had more after ${MAX_PAGES} pages; stopped`);
  }

  private urlOf(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, value);
    const search = params.toString();
    return `${this.connection.url}${path}${search === '' ? '' : `?${search}`}`;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function apiError(response: Response, body: unknown, text: string, method: string, url: string): ApiError {
  if (isObject(body) && typeof body['error'] === 'string') {
    const code = typeof body['code'] === 'number' ? body['code'] : response.status;
    const reason = typeof body['reason'] === 'string' ? body['reason'] : 'error';
    const current = typeof body['current_version'] === 'number' ? `; current version ${body['current_version']}` : '';
    return new ApiError(`${body['error']} (${reason}, HTTP ${code}${current})`, response.status, reason);
  }
  const snippet = text.trim().slice(0, 200).replace(/\s+/g, ' ');
  const what = `${method} ${url} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  return new ApiError(snippet === '' ? what : `${what}: ${snippet}`, response.status, 'http_error');
}

/** The codes of a fetch failure: undici puts the system error in `cause` (or its `errors`). */
function errorCodes(error: unknown, depth = 0): string[] {
  if (!isObject(error) && !(error instanceof Error)) return [];
  if (depth > 4) return [];
  const e = error as { code?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof e.code === 'string' ? [e.code] : e.name === 'TimeoutError' ? ['ETIMEDOUT'] : [];
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorCodes(x, depth + 1)) : [];
  return [...own, ...errorCodes(e.cause, depth + 1), ...nested];
}

function unreachableMessage(url: string, error: unknown): string {
  const codes = errorCodes(error);
  const hint = 'start the gateway (allowgate serve) or point --url / ALLOWGATE_ADMIN_URL at its admin listener';
  if (codes.includes('ECONNREFUSED')) return `cannot reach the admin API at ${url}: connection refused; ${hint}`;
  if (codes.includes('ENOTFOUND') || codes.includes('EAI_AGAIN')) return `cannot reach the admin API at ${url}: unknown host; ${hint}`;
  if (codes.includes('ETIMEDOUT') || codes.includes('UND_ERR_CONNECT_TIMEOUT')) return `no answer from the admin API at ${url} within ${TIMEOUT_MS / 1000} s`;
  const detail = codes[0] ?? (error instanceof Error ? error.message : String(error));
  return `cannot reach the admin API at ${url} (${detail}); ${hint}`;
}
