import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { ok, refusal, refused, type Refusal, type Refused, type Result } from '../http/refusal.ts';
import { clip } from '../ip/cidr.ts';

/*
 * A request field checked against its schema in api-schemas.ts, and the refusal worded from the
 * same schema: `<field> must be <what the schema accepts>` (400 invalid_field), so the document,
 * the check and the message cannot drift apart.
 */

type Node = Record<string, unknown>;

/** Null when `value` fits `schema`; else the refusal naming the field and what it must be. */
export function fieldRefusal(field: string, schema: TSchema, value: unknown): Refused | null {
  return Value.Check(schema, value) ? null : refused(refusal(400, 'invalid_field', `${field} must be ${expectation(schema)}`));
}

/**
 * A query parameter read against its schema (api-schemas.ts `Query`): null when absent, the value
 * (a number or boolean where the schema says so) when it fits, else the refusal
 * `<name> must be <choices>, got '<text>'`.
 */
export function queryValue<S extends TSchema>(query: URLSearchParams, name: string, schema: S): Result<Static<S> | null> {
  const raw = query.get(name);
  if (raw === null) return ok(null);
  const node = schema as Node;
  const value = node['type'] === 'integer' ? (/^[0-9]{1,9}$/.test(raw) ? Number(raw) : raw)
    : node['type'] === 'boolean' ? (raw === 'true' ? true : raw === 'false' ? false : raw)
      : raw;
  if (Value.Check(schema, value)) return ok(value as Static<S>);
  const words = alternatives(node).map((w) => w.replace(/^"(.*)"$/, '$1'));
  return refused(refusal(400, 'invalid_field', `${name} must be ${joined(words)}, got '${clip(raw)}'`));
}

/**
 * A path parameter (api-schemas.ts `Path`), decoded, checked against its schema: the value when it
 * fits, else `refuse(value)` (each parameter has its own reason code, e.g. `invalid_account`).
 */
export function pathValue<S extends TSchema>(schema: S, value: string, refuse: (value: string) => Refusal): Result<Static<S>> {
  return Value.Check(schema, value) ? ok(value as Static<S>) : refused(refuse(value));
}

/** What a schema accepts, in words: `"allow" or "deny"`, `an integer 0-100000 or null`, `a string of at most 255 characters`. */
export function expectation(schema: TSchema): string {
  return joined(alternatives(schema as Node));
}

/** `a`, `a or b`, `a, b or c`. */
function joined(words: readonly string[]): string {
  return words.reduce((out, next, i) => (i === 0 ? next : `${out}${i === words.length - 1 ? ' or ' : ', '}${next}`), '');
}

function alternatives(node: Node): string[] {
  if (Array.isArray(node['anyOf'])) return (node['anyOf'] as Node[]).flatMap(alternatives);
  if (Array.isArray(node['enum'])) return (node['enum'] as unknown[]).map((v) => (v === null ? 'null' : JSON.stringify(v)));
  switch (node['type']) {
    case 'null':
      return ['null'];
    case 'boolean':
      return ['true', 'false'];
    case 'integer': {
      const { minimum, maximum } = node;
      return [minimum !== undefined && maximum !== undefined ? `an integer ${String(minimum)}-${String(maximum)}` : 'an integer'];
    }
    case 'string':
      return [node['maxLength'] === undefined ? 'a string' : `a string of at most ${String(node['maxLength'])} characters`];
    default:
      throw new Error(`no wording for schema ${JSON.stringify(node)}`);
  }
}
