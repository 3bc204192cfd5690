import { refusal, type Refusal } from '../http/refusal.ts';

export type Params = Readonly<Record<string, string>>;

export interface Route<H> {
  readonly method: string;
  readonly template: string;
  readonly handler: H;
  /** Changes nothing, whatever its method (a compatible API that reads with POST). */
  readonly reads?: boolean;
}

interface Compiled<H> extends Route<H> {
  readonly segments: readonly string[];
  /** Literal segments: `/ip-acl/export` outranks `/ip-acl/{id}` for the same path. */
  readonly literals: number;
}

export type Match<H> =
  | { readonly ok: true; readonly handler: H; readonly params: Params; readonly template: string; readonly writes: boolean }
  | { readonly ok: false; readonly refusal: Refusal; readonly allow?: string };

/**
 * Method + path-template routing (`/v1/accounts/{account}/ip-acl/{id}`). Parameters are the raw
 * segments, still percent-encoded: each handler decodes and validates what it takes.
 */
export function compileRoutes<H>(routes: readonly Route<H>[]): (method: string, path: string) => Match<H> {
  const compiled: Compiled<H>[] = routes.map((r) => {
    const segments = r.template.split('/').slice(1);
    return { ...r, segments, literals: segments.filter((s) => !s.startsWith('{')).length };
  });
  return (method, path) => {
    const segments = path.split('/').slice(1);
    let best = -1;
    const candidates: { route: Compiled<H>; params: Params }[] = [];
    for (const route of compiled) {
      const params = matchSegments(route.segments, segments);
      if (params === null || route.literals < best) continue;
      if (route.literals > best) {
        best = route.literals;
        candidates.length = 0;
      }
      candidates.push({ route, params });
    }
    for (const { route, params } of candidates) {
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        return { ok: true, handler: route.handler, params, template: route.template, writes: route.reads !== true && method !== 'GET' && method !== 'HEAD' };
      }
    }
    const allowed = [...new Set(candidates.map((c) => c.route.method))];
    if (allowed.length > 0) {
      return { ok: false, refusal: refusal(405, 'method_not_allowed', `${method} is not allowed on ${path.slice(0, 128)}; use ${allowed.join(', ')}`), allow: allowed.join(', ') };
    }
    return { ok: false, refusal: refusal(404, 'not_found', `no admin route ${path.slice(0, 128)}`) };
  };
}

function matchSegments(template: readonly string[], path: readonly string[]): Record<string, string> | null {
  if (template.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const t = template[i]!;
    const p = path[i]!;
    if (t.startsWith('{') && t.endsWith('}')) {
      if (p.length === 0) return null;
      params[t.slice(1, -1)] = p;
    } else if (t !== p) {
      return null;
    }
  }
  return params;
}

/** A path parameter, percent-decoded (as given when it does not decode). */
export function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
