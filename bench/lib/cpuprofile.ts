/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time, idle
 * time left out, so a profile of a gateway under load says where its CPU went.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly fn: string;
  readonly where: string;
  /** Share of the busy (non-idle) time, percent. */
  readonly percent: number;
  readonly ms: number;
}

export function topSelfTime(file: string, root: string, limit = 25): { busyMs: number; top: SelfTime[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  // Functions, not call-tree nodes: one function reached along several paths is summed.
  const byFunction = new Map<string, { fn: string; where: string; us: number }>();
  let busyUs = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    busyUs += us;
    const path = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
    const where = path === '' ? '' : `${path}:${lineNumber + 1}`;
    const key = `${functionName}@${where}`;
    const item = byFunction.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 };
    item.us += us;
    byFunction.set(key, item);
  }
  const top = [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, limit)
    .map((f) => ({ fn: f.fn, where: f.where, ms: f.us / 1000, percent: (f.us / busyUs) * 100 }));
  return { busyMs: busyUs / 1000, top };
}
