import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/*
 * Reading an OpenAPI 3.1 document in tests: JSON pointers and reference objects, and validation
 * of values against the document's schemas with ajv (JSON Schema 2020-12, the dialect of OpenAPI
 * 3.1), in strict mode, so a keyword ajv does not know fails instead of being skipped.
 */

export type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value a local JSON pointer (`#/components/schemas/Entry`) names in `root`, or undefined. */
export function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = /^\d+$/.test(key) ? node[Number(key)] : undefined;
    else if (isObject(node)) node = Object.hasOwn(node, key) ? node[key] : undefined;
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Follows `$ref`s (only a `$ref` object, as OpenAPI reference objects are) to the object they name. */
export function deref(root: unknown, node: unknown): unknown {
  let current = node;
  for (let hops = 0; isObject(current) && typeof current['$ref'] === 'string'; hops++) {
    if (hops > 32) throw new Error(`reference cycle at ${String(current['$ref'])}`);
    const ref = current['$ref'];
    const next = resolvePointer(root, ref);
    if (next === undefined) throw new Error(`unresolved reference ${ref}`);
    current = next;
  }
  return current;
}

/** Every `$ref` in `node`, with where it sits. */
export function collectRefs(node: unknown, path = '#'): { path: string; ref: string }[] {
  if (Array.isArray(node)) return node.flatMap((item, i) => collectRefs(item, `${path}/${i}`));
  if (!isObject(node)) return [];
  const refs: { path: string; ref: string }[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') refs.push({ path, ref: value });
    else refs.push(...collectRefs(value, `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`));
  }
  return refs;
}

const DOCUMENT_ID = 'https://allowgate.invalid/openapi.json';
// ajv-formats is CommonJS: the plugin is its `default` property.
const addFormats = addFormatsModule.default;

/** A schema of the document with its local references pointed at the document registered in ajv. */
function rebased(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebased);
  if (!isObject(node)) return node;
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, key === '$ref' && typeof value === 'string' && value.startsWith('#') ? `${DOCUMENT_ID}${value}` : rebased(value)]));
}

/**
 * Validates values against schemas of `doc` (a schema object taken from the document, or one of
 * its references), each compiled once. `errors` lists ajv's findings as `path: problem` (`$` for
 * the value itself); empty means valid. Throws on a schema ajv cannot compile strictly.
 */
export function documentValidator(doc: JsonObject): { errors(value: unknown, schema: unknown): string[]; compile(schema: unknown): void } {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  // The component schemas as a schema of their own, so `#/components/schemas/...` resolves.
  ajv.addSchema({ $id: DOCUMENT_ID, $defs: {}, components: rebased(doc['components']) } as object, undefined, undefined, false);
  ajv.addVocabulary(['components']);
  const compiled = new WeakMap<object, ValidateFunction>();
  const compile = (schema: unknown): ValidateFunction => {
    if (!isObject(schema)) throw new Error(`not a schema: ${JSON.stringify(schema)}`);
    let validate = compiled.get(schema);
    if (validate === undefined) {
      validate = ajv.compile(rebased(schema) as object);
      compiled.set(schema, validate);
    }
    return validate;
  };
  return {
    compile: (schema) => void compile(schema),
    errors: (value, schema) => {
      const validate = compile(schema);
      if (validate(value)) return [];
      return (validate.errors ?? []).map((e) => `$${e.instancePath.replace(/\//g, '.')}: ${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: unknown }).additionalProperty)})` : ''}`);
    },
  };
}
