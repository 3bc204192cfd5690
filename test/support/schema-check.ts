/**
 * A small JSON Schema (2020-12 / OpenAPI 3.1) validator for the subset the management API's
 * OpenAPI document uses: type (also arrays of types), properties, required,
 * additionalProperties (false or a schema), items, enum, const, $ref (JSON pointers into the
 * document), format date-time (loosely), minimum, maximum, minLength, maxLength, pattern.
 * Annotation keywords are ignored; any other keyword is reported as an error, so the document
 * cannot use a rule this checker would silently skip.
 */

export type JsonObject = Record<string, unknown>;

const ANNOTATIONS = new Set(['description', 'title', 'examples', 'example', 'default', 'readOnly', 'writeOnly', 'deprecated', '$comment']);
const KEYWORDS = new Set(['$ref', 'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'const', 'format', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern']);
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null': return value === null;
    case 'array': return Array.isArray(value);
    case 'object': return isObject(value);
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'string': return typeof value === 'string';
    case 'boolean': return typeof value === 'boolean';
    default: return false;
  }
}

/** The value a local JSON pointer (`#/components/schemas/Entry`) names in `root`, or undefined. */
export function resolvePointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
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

// ISO 8601 date-time as RFC 3339 writes it (loosely: fractions of any length, Z or an offset).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function member(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Errors of `value` against `schema` (resolving `$ref`s in `root`), each as `path: problem`
 * with `$` for the value itself. An empty list means the value is valid.
 */
export function checkSchema(value: unknown, schema: unknown, root: unknown, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value is allowed here`];
  if (!isObject(schema)) return [`${path}: the schema is not an object`];
  const errors: string[] = [];
  for (const key of Object.keys(schema)) {
    if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) errors.push(`${path}: unsupported schema keyword '${key}'`);
  }

  const ref = schema['$ref'];
  if (ref !== undefined) {
    const target = typeof ref === 'string' ? resolvePointer(root, ref) : undefined;
    if (target === undefined) errors.push(`${path}: unresolved $ref ${String(ref)}`);
    else errors.push(...checkSchema(value, target, root, path));
  }

  const type = schema['type'];
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    const unknown = types.find((t) => typeof t !== 'string' || !TYPES.has(t));
    if (unknown !== undefined) errors.push(`${path}: unknown type ${JSON.stringify(unknown)} in the schema`);
    else if (!types.some((t) => hasType(value, t as string))) {
      errors.push(`${path}: expected ${types.join(' or ')}, got ${typeOf(value)}`);
      return errors; // The remaining keywords would only repeat the mismatch.
    }
  }

  const choices = schema['enum'];
  if (Array.isArray(choices) && !choices.some((c) => c === value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(choices)}`);
  if ('const' in schema && schema['const'] !== value) errors.push(`${path}: expected ${JSON.stringify(schema['const'])}, got ${JSON.stringify(value)}`);

  if (typeof value === 'number') {
    const min = schema['minimum'];
    const max = schema['maximum'];
    if (typeof min === 'number' && value < min) errors.push(`${path}: ${value} is less than the minimum ${min}`);
    if (typeof max === 'number' && value > max) errors.push(`${path}: ${value} is more than the maximum ${max}`);
  }

  if (typeof value === 'string') {
    const minLength = schema['minLength'];
    const maxLength = schema['maxLength'];
    const length = [...value].length;
    if (typeof minLength === 'number' && length < minLength) errors.push(`${path}: shorter than ${minLength} characters`);
    if (typeof maxLength === 'number' && length > maxLength) errors.push(`${path}: longer than ${maxLength} characters`);
    const pattern = schema['pattern'];
    if (typeof pattern === 'string' && !new RegExp(pattern, 'u').test(value)) errors.push(`${path}: ${JSON.stringify(value.slice(0, 64))} does not match /${pattern}/`);
    const format = schema['format'];
    if (format === 'date-time') {
      if (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) errors.push(`${path}: ${JSON.stringify(value.slice(0, 64))} is not an ISO 8601 date-time`);
    } else if (format !== undefined) {
      errors.push(`${path}: unsupported format ${JSON.stringify(format)} in the schema`);
    }
  }

  if (Array.isArray(value) && schema['items'] !== undefined) {
    value.forEach((item, i) => errors.push(...checkSchema(item, schema['items'], root, `${path}[${i}]`)));
  }

  if (isObject(value)) {
    const properties = isObject(schema['properties']) ? schema['properties'] : {};
    const required = schema['required'];
    if (Array.isArray(required)) {
      for (const key of required) {
        if (typeof key === 'string' && !Object.hasOwn(value, key)) errors.push(`${member(path, key)}: required, missing`);
      }
    }
    const additional = schema['additionalProperties'];
    for (const [key, item] of Object.entries(value)) {
      if (Object.hasOwn(properties, key)) errors.push(...checkSchema(item, properties[key], root, member(path, key)));
      else if (additional === false) errors.push(`${member(path, key)}: not allowed (additionalProperties is false)`);
      else if (additional !== undefined && additional !== true) errors.push(...checkSchema(item, additional, root, member(path, key)));
    }
  }
  return errors;
}

/**
 * Keywords in `schema` (and the schemas nested in it) that `checkSchema` does not understand,
 * as `path: keyword`: a document using them would be checked less strictly than it reads.
 */
export function unsupportedKeywords(schema: unknown, path = '#'): string[] {
  if (typeof schema === 'boolean') return [];
  if (!isObject(schema)) return [`${path}: not a schema`];
  const found = Object.keys(schema).filter((k) => !KEYWORDS.has(k) && !ANNOTATIONS.has(k)).map((k) => `${path}: ${k}`);
  const format = schema['format'];
  if (format !== undefined && format !== 'date-time') found.push(`${path}: format ${JSON.stringify(format)}`);
  const types = schema['type'] === undefined ? [] : Array.isArray(schema['type']) ? schema['type'] : [schema['type']];
  for (const t of types) if (typeof t !== 'string' || !TYPES.has(t)) found.push(`${path}: type ${JSON.stringify(t)}`);
  if (isObject(schema['properties'])) {
    for (const [key, value] of Object.entries(schema['properties'])) found.push(...unsupportedKeywords(value, `${path}/properties/${key}`));
  }
  if (schema['items'] !== undefined) found.push(...unsupportedKeywords(schema['items'], `${path}/items`));
  if (schema['additionalProperties'] !== undefined) found.push(...unsupportedKeywords(schema['additionalProperties'], `${path}/additionalProperties`));
  return found;
}
