import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BROWSER, EXCEPTIONS, LAYERS } from './layers.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

// Every form an ES module names another by: static imports and re-exports (type-only ones too:
// a type edge is as much a layer edge as a value one), side-effect imports and dynamic import().
const SPECIFIERS = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    return d.isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

/** src-relative file → the src-relative files it imports (packages and node: built-ins left out). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(join(SRC, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|(?<![:'"])\/\/[^\n]*/g, '');
    const targets: string[] = [];
    for (const match of text.matchAll(SPECIFIERS)) {
      const spec = match[1] ?? match[2]!;
      if (spec.startsWith('.')) targets.push(normalize(join(dirname(file), spec)));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** `store/redis/keys.ts` → `store`; `app.ts` → `app`. */
const folderOf = (file: string): string => file.split('/')[0]!.replace(/\.ts$/, '');

const rank = new Map(LAYERS.flatMap((layer, i) => layer.folders.map((folder) => [folder, i] as const)));

const graph = importGraph();
const edges = [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })));

describe('imports flow one way (test/architecture/layers.ts)', () => {
  it('reads the graph: every relative import names a file that exists', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(edges.filter((e) => !graph.has(e.to))).toEqual([]);
  });

  it('rule "every folder has a layer": each folder of src/ is placed in LAYERS (or is the browser console)', () => {
    const unplaced = [...new Set([...graph.keys()].map(folderOf))].filter((f) => !rank.has(f) && f !== BROWSER.folder);
    expect(unplaced, 'place these folders in a layer in test/architecture/layers.ts').toEqual([]);
  });

  it('rule "downward only": a module imports its own folder or a lower layer, never a peer or a higher one', () => {
    const broken = edges.flatMap(({ from, to }) => {
      const a = folderOf(from);
      const b = folderOf(to);
      if (a === b || a === BROWSER.folder) return [];
      if (EXCEPTIONS.some((e) => e.from === from && e.to === to)) return [];
      const ra = rank.get(a)!;
      const rb = rank.get(b)!;
      if (rb < ra) return [];
      const how = rb === ra ? 'a peer in the same layer' : 'a higher layer';
      return [`downward only: src/${from} imports src/${to}, ${how} ("${LAYERS[rb]!.name}" is not below "${LAYERS[ra]!.name}")`];
    });
    expect(broken).toEqual([]);
  });

  it('rule "browser code": the console imports only what runs in a browser', () => {
    const broken = edges
      .filter(({ from, to }) => folderOf(from) === BROWSER.folder && !BROWSER.mayImport.some((allowed) => to === allowed || folderOf(to) === allowed))
      .map(({ from, to }) => `browser code: src/${from} imports src/${to}, which is not in BROWSER.mayImport`);
    expect(broken).toEqual([]);
  });

  it('rule "no cycles": no file reaches itself through its imports', () => {
    // Tarjan's strongly connected components; any component of more than one file is a cycle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[] = [];
    const visit = (v: string): void => {
      index.set(v, index.size);
      low.set(v, index.get(v)!);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) !== index.get(v)) return;
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(`no cycles: ${component.sort().join(' → ')}`);
    };
    for (const v of graph.keys()) if (!index.has(v)) visit(v);
    expect(cycles).toEqual([]);
  });

  it('the exceptions are still needed, and each says why', () => {
    for (const e of EXCEPTIONS) {
      expect(e.why.length, `${e.from} → ${e.to}`).toBeGreaterThan(10);
      expect(graph.get(e.from) ?? [], `exception ${e.from} → ${e.to} is no longer used: remove it`).toContain(e.to);
    }
  });
});
