import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Reader } from './reader.ts';
import type { Config, StoreSpec } from './types.ts';

const MIN_TOKEN_LENGTH = 16;

/**
 * The admin token, from (in order) ALLOWGATE_ADMIN_TOKEN / `admin.token`, `admin.tokenFile`, or,
 * so that a fresh clone runs with no set-up, a random token generated once and kept in a file
 * (`admin-token`, mode 0600, see adminTokenPath). The admin API is never left open.
 */
export function resolveAdminToken(tokenReader: Reader, fileReader: Reader, store: StoreSpec): Pick<Config['admin'], 'token' | 'tokenSource'> {
  if (tokenReader.present) {
    const token = tokenReader.string();
    if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) tokenReader.fail(`a token of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
    return { token, tokenSource: 'configured' };
  }
  if (fileReader.present) {
    const path = fileReader.string();
    let token: string;
    try {
      token = readFileSync(path, 'utf8').trim();
    } catch (error) {
      return fileReader.fail(`a readable file holding the admin token (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    if (token.length < MIN_TOKEN_LENGTH) fileReader.fail(`a file holding a token of at least ${MIN_TOKEN_LENGTH} characters`);
    return { token, tokenSource: 'file' };
  }
  const path = adminTokenPath(store);
  if (path === undefined) return { token: generateToken(), tokenSource: 'generated' };
  const kept = keepGeneratedSecret(path, generateToken, MIN_TOKEN_LENGTH);
  return { token: kept.value, tokenSource: kept.generated ? 'generated' : 'file' };
}

/**
 * A secret kept in a file (mode 0600): the one there, or `generate()`'s, written whole under a
 * temporary name and then linked into place. Link fails if the file exists, so processes started
 * together agree on the first secret rather than overwrite each other's.
 */
export function keepGeneratedSecret(path: string, generate: () => string, minLength: number): { readonly value: string; readonly generated: boolean } {
  const existing = readTokenFile(path, minLength);
  if (existing !== null) return { value: existing, generated: false };
  const value = generate();
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${value}\n`, { mode: 0o600 });
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = readTokenFile(path, minLength);
    if (winner !== null) return { value: winner, generated: false };
    renameSync(temp, path);
    return { value, generated: true };
  } finally {
    rmSync(temp, { force: true });
  }
  return { value, generated: true };
}

function readTokenFile(path: string, minLength: number): string | null {
  if (!existsSync(path)) return null;
  const token = readFileSync(path, 'utf8').trim();
  return token.length >= minLength ? token : null;
}

/**
 * Beside the file store; with Redis, in the local data directory, so replicas started from one
 * directory share it. With the memory store a generated token lives as long as the process.
 */
export function adminTokenPath(store: StoreSpec): string | undefined {
  switch (store.kind) {
    case 'memory':
      return undefined;
    case 'file':
      return join(dirname(store.path), 'admin-token');
    case 'redis':
      return join('data', 'admin-token');
  }
}

function generateToken(): string {
  return randomBytes(24).toString('base64url');
}
