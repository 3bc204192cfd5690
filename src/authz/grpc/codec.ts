/**
 * `envoy.service.auth.v3.Authorization/Check` messages, decoded and encoded by hand (field numbers
 * and types from ./proto). A CheckRequest carries much the decision never reads (destination,
 * metadata, TLS details, the body): only the source address, the method, the target and the
 * headers are read, and everything else is stepped over without building objects for it.
 */

import { LENGTH_DELIMITED, WireError, WireReader, WireWriter } from './wire.ts';

/** What a decision needs from a CheckRequest. */
export interface CheckRequestView {
  /** attributes.source.address.socket_address.address; null when the source is no IP socket (a pipe, an internal address). */
  readonly source: string | null;
  /** attributes.request.http.method */
  readonly method: string;
  /** attributes.request.http.path: the target as in the request line, query included. */
  readonly path: string;
  /** attributes.request.http.id */
  readonly id: string;
  /**
   * The request's headers as `[name, value, ...]`, pseudo-headers (`:path`, ...) left out: from
   * `header_map` when Envoy sends raw headers (every line kept), else from the `headers` map.
   */
  readonly headers: string[];
}

// Field numbers, from the .proto files.
const CHECK_REQUEST_ATTRIBUTES = 1;
const ATTRIBUTES_SOURCE = 1;
const ATTRIBUTES_REQUEST = 4;
const PEER_ADDRESS = 1;
const ADDRESS_SOCKET_ADDRESS = 1;
const SOCKET_ADDRESS_ADDRESS = 2;
const REQUEST_HTTP = 2;
const HTTP_ID = 1;
const HTTP_METHOD = 2;
const HTTP_HEADERS = 3;
const HTTP_PATH = 4;
const HTTP_HEADER_MAP = 13;
const MAP_KEY = 1;
const MAP_VALUE = 2;
const HEADER_MAP_HEADERS = 1;
const HEADER_VALUE_KEY = 1;
const HEADER_VALUE_VALUE = 2;
const HEADER_VALUE_RAW_VALUE = 3;

interface Draft {
  source: string | null;
  method: string;
  path: string;
  id: string;
  mapHeaders: string[];
  rawHeaders: string[] | null;
}

/** Throws a WireError on bytes that are not a well-formed CheckRequest. */
export function decodeCheckRequest(buf: Buffer): CheckRequestView {
  const draft: Draft = { source: null, method: '', path: '', id: '', mapHeaders: [], rawHeaders: null };
  eachField(new WireReader(buf), (field, r) => {
    if (field === CHECK_REQUEST_ATTRIBUTES) readAttributes(sub(r), draft);
    else return false;
    return true;
  });
  return { source: draft.source, method: draft.method, path: draft.path, id: draft.id, headers: draft.rawHeaders ?? draft.mapHeaders };
}

function readAttributes(r: WireReader, draft: Draft): void {
  eachField(r, (field, at) => {
    if (field === ATTRIBUTES_SOURCE) draft.source = readPeerAddress(sub(at));
    else if (field === ATTRIBUTES_REQUEST) readRequest(sub(at), draft);
    else return false;
    return true;
  });
}

function readPeerAddress(r: WireReader): string | null {
  let address: string | null = null;
  eachField(r, (field, at) => {
    if (field !== PEER_ADDRESS) return false;
    // Address is a oneof: only a socket address names an IP.
    address = null;
    eachField(sub(at), (kind, inner) => {
      if (kind !== ADDRESS_SOCKET_ADDRESS) return false;
      eachField(sub(inner), (f, socket) => {
        if (f !== SOCKET_ADDRESS_ADDRESS) return false;
        address = socket.string();
        return true;
      });
      return true;
    });
    return true;
  });
  return address;
}

function readRequest(r: WireReader, draft: Draft): void {
  eachField(r, (field, at) => {
    if (field !== REQUEST_HTTP) return false;
    readHttp(sub(at), draft);
    return true;
  });
}

function readHttp(r: WireReader, draft: Draft): void {
  eachField(r, (field, at) => {
    switch (field) {
      case HTTP_ID:
        draft.id = at.string();
        return true;
      case HTTP_METHOD:
        draft.method = at.string();
        return true;
      case HTTP_PATH:
        draft.path = at.string();
        return true;
      case HTTP_HEADERS:
        readMapEntry(sub(at), draft.mapHeaders);
        return true;
      case HTTP_HEADER_MAP:
        readHeaderMap(sub(at), (draft.rawHeaders ??= []));
        return true;
      default:
        return false;
    }
  });
}

function readMapEntry(r: WireReader, out: string[]): void {
  let key = '';
  let value = '';
  eachField(r, (field, at) => {
    if (field === MAP_KEY) key = at.string();
    else if (field === MAP_VALUE) value = at.string();
    else return false;
    return true;
  });
  if (!isPseudo(key)) out.push(key, value);
}

function readHeaderMap(r: WireReader, out: string[]): void {
  eachField(r, (field, at) => {
    if (field !== HEADER_MAP_HEADERS) return false;
    let key = '';
    let value = '';
    let raw: string | null = null;
    eachField(sub(at), (f, header) => {
      if (f === HEADER_VALUE_KEY) key = header.string();
      else if (f === HEADER_VALUE_VALUE) value = header.string();
      else if (f === HEADER_VALUE_RAW_VALUE) raw = header.latin1();
      else return false;
      return true;
    });
    if (!isPseudo(key)) out.push(key, raw ?? value);
    return true;
  });
}

function isPseudo(name: string): boolean {
  return name.charCodeAt(0) === 58 /* : */;
}

/**
 * Calls `read` for every field; `read` consumes the fields it knows (all of them
 * length-delimited here) and returns false for the rest, which are skipped whatever their type.
 */
function eachField(r: WireReader, read: (field: number, r: WireReader) => boolean): void {
  while (r.more()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new WireError('field number 0');
    if (wireType === LENGTH_DELIMITED && read(field, r)) continue;
    r.skip(wireType);
  }
}

/** A reader over the length-delimited field at the cursor (the cursor moves past it). */
function sub(r: WireReader): WireReader {
  const { start, end } = r.span();
  return new WireReader(r.buf, start, end);
}

// ---- the answer ---------------------------------------------------------------------------------

export type HeaderPair = readonly [name: string, value: string];

/** What Envoy is told: OK with headers for the upstream, or a denial with the client's response. */
export interface CheckAnswer {
  /** google.rpc.Code: 0 allows, anything else denies. */
  readonly code: number;
  readonly message: string;
  readonly ok: { readonly headers: readonly HeaderPair[]; readonly remove: readonly string[] } | null;
  readonly denied: { readonly status: number; readonly headers: readonly HeaderPair[]; readonly body: string } | null;
  /** CheckResponse.dynamic_metadata: string values, or null values for null. */
  readonly metadata: readonly (readonly [key: string, value: string | null])[];
}

const RESPONSE_STATUS = 1;
const RESPONSE_DENIED = 2;
const RESPONSE_OK = 3;
const RESPONSE_DYNAMIC_METADATA = 4;
const STATUS_CODE = 1;
const STATUS_MESSAGE = 2;
const DENIED_STATUS = 1;
const DENIED_HEADERS = 2;
const DENIED_BODY = 3;
const HTTP_STATUS_CODE = 1;
const OK_HEADERS = 2;
const OK_HEADERS_TO_REMOVE = 5;
const OPTION_HEADER = 1;
const OPTION_APPEND_ACTION = 3;
/** HeaderValueOption.HeaderAppendAction: replace the request's value, or add the header. */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;
const STRUCT_FIELDS = 1;
const VALUE_NULL = 1;
const VALUE_STRING = 3;

export function encodeCheckResponse(answer: CheckAnswer): Buffer {
  const out = new WireWriter();
  const status = new WireWriter();
  if (answer.code !== 0) status.varintField(STATUS_CODE, answer.code);
  if (answer.message !== '') status.stringField(STATUS_MESSAGE, answer.message);
  out.messageField(RESPONSE_STATUS, status);
  if (answer.denied !== null) {
    const denied = new WireWriter().messageField(DENIED_STATUS, new WireWriter().varintField(HTTP_STATUS_CODE, answer.denied.status));
    for (const header of answer.denied.headers) denied.messageField(DENIED_HEADERS, headerOption(header));
    if (answer.denied.body !== '') denied.stringField(DENIED_BODY, answer.denied.body);
    out.messageField(RESPONSE_DENIED, denied);
  }
  if (answer.ok !== null) {
    const ok = new WireWriter();
    for (const header of answer.ok.headers) ok.messageField(OK_HEADERS, headerOption(header));
    for (const name of answer.ok.remove) ok.stringField(OK_HEADERS_TO_REMOVE, name);
    out.messageField(RESPONSE_OK, ok);
  }
  if (answer.metadata.length > 0) {
    const struct = new WireWriter();
    for (const [key, value] of answer.metadata) {
      const entry = new WireWriter().stringField(MAP_KEY, key);
      entry.messageField(MAP_VALUE, value === null ? new WireWriter().varintField(VALUE_NULL, 0) : new WireWriter().stringField(VALUE_STRING, value));
      struct.messageField(STRUCT_FIELDS, entry);
    }
    out.messageField(RESPONSE_DYNAMIC_METADATA, struct);
  }
  return out.finish();
}

function headerOption([name, value]: HeaderPair): WireWriter {
  const header = new WireWriter().stringField(HEADER_VALUE_KEY, name).stringField(HEADER_VALUE_VALUE, value);
  return new WireWriter().messageField(OPTION_HEADER, header).varintField(OPTION_APPEND_ACTION, OVERWRITE_IF_EXISTS_OR_ADD);
}
