import { ok, refusal, refused, type Result } from '../http/refusal.ts';
import { clip } from '../ip/cidr.ts';
import { EntryListInput } from './api-schemas.ts';

/*
 * The wrapper of a JSON list body (api-schemas.ts EntryListInput): an object whose `entries` is
 * an array, with no field the schema does not define. The items are not checked here: each is a
 * row, read and refused on its own (bulk-input.ts), so a dry run can say what every row would do.
 * The fields the schema does not require (an export's account and version) are accepted and not read.
 */

const FIELDS = Object.keys(EntryListInput.properties);
const REQUIRED: readonly string[] = EntryListInput.required;
const IGNORED = FIELDS.filter((key) => !REQUIRED.includes(key));

/** The items of a list body, or the refusal of its wrapper. */
export function listBodyItems(body: unknown): Result<readonly unknown[]> {
  const entries = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { entries?: unknown }).entries : undefined;
  if (!Array.isArray(entries)) return refused(refusal(400, 'invalid_field', 'the body must be {"entries": [{"ip_address": ...}, ...]}'));
  const extra = Object.keys(body as object).find((key) => !FIELDS.includes(key));
  if (extra !== undefined) return refused(refusal(400, 'unknown_field', `unknown field '${clip(extra)}': expected ${REQUIRED.join(', ')} (${IGNORED.join(' and ')} are ignored)`));
  return ok(entries);
}
