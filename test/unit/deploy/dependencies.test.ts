import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/*
 * The image installs `dependencies` only (npm ci --omit=dev): every package the gateway imports
 * must be one, and every one must be imported by it, or the image ships code nothing runs.
 */

const root = new URL('../../../', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The packages a file imports (static and dynamic imports, type-only ones excluded: they are erased). */
function packagesOf(text: string): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(/^\s*import\s+(type\s+)?[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)|^\s*export\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
    if (match[1] !== undefined || match[4] !== undefined) continue;
    const specifier = match[2] ?? match[3] ?? match[5]!;
    if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
    const parts = specifier.split('/');
    out.push(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
  }
  return out;
}

describe('runtime dependencies', () => {
  const imported = new Set(sources(join(root, 'src')).flatMap((file) => packagesOf(readFileSync(file, 'utf8'))));

  it('every package src/ imports at run time is a dependency, not a dev dependency', () => {
    expect([...imported].filter((name) => !(name in pkg.dependencies)).sort()).toEqual([]);
  });

  it('every dependency is imported by src/ (test oracles such as ipaddr.js are dev dependencies)', () => {
    expect(Object.keys(pkg.dependencies).filter((name) => !imported.has(name)).sort()).toEqual([]);
    expect(pkg.devDependencies).toHaveProperty('ipaddr.js');
  });
});
