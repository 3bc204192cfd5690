/**
 * The protobuf wire format, as much of it as the check service needs: reading fields one by one
 * (skipping the ones a decision does not use) and writing the few messages it answers with.
 * Numbers and types follow the .proto files in ./proto.
 */

export const VARINT = 0;
export const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
export const FIXED32 = 5;

export class WireError extends Error {
  override readonly name = 'WireError';
}

/** A cursor over one message's bytes: `pos` moves forward, `end` is where the message stops. */
export class WireReader {
  pos: number;
  readonly end: number;
  readonly buf: Buffer;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  more(): boolean {
    return this.pos < this.end;
  }

  /** A varint that fits in 32 bits (tags, lengths, enum values); longer ones are read past, their high bits dropped. */
  varint(): number {
    const buf = this.buf;
    let value = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const byte = buf[this.pos++]!;
      if (shift < 32) value |= (byte & 0x7f) << shift;
      shift += 7;
      if (byte < 0x80) return value >>> 0;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** The bounds of a length-delimited field's payload; the cursor moves past it. */
  span(): { start: number; end: number } {
    const length = this.varint();
    const start = this.pos;
    const end = start + length;
    if (end > this.end) throw new WireError('length-delimited field runs past its message');
    this.pos = end;
    return { start, end };
  }

  string(): string {
    const { start, end } = this.span();
    return this.buf.toString('utf8', start, end);
  }

  /** Bytes as Latin-1 text: one character per byte, as Node reads HTTP header values. */
  latin1(): string {
    const { start, end } = this.span();
    return this.buf.toString('latin1', start, end);
  }

  /** Moves past a field of the given wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LENGTH_DELIMITED:
        this.span();
        return;
      case FIXED32:
        this.advance(4);
        return;
      default:
        // Groups (3, 4) are proto2-only and never appear in these messages.
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(bytes: number): void {
    if (this.pos + bytes > this.end) throw new WireError('truncated fixed-width field');
    this.pos += bytes;
  }
}

/** Builds a message as a list of chunks; nested messages are written first and added whole. */
export class WireWriter {
  readonly #chunks: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  varintField(field: number, value: number): this {
    this.#raw(varint((field << 3) | VARINT));
    this.#raw(varint(value));
    return this;
  }

  stringField(field: number, value: string): this {
    return this.bytesField(field, Buffer.from(value, 'utf8'));
  }

  bytesField(field: number, value: Buffer): this {
    this.#raw(varint((field << 3) | LENGTH_DELIMITED));
    this.#raw(varint(value.length));
    this.#raw(value);
    return this;
  }

  messageField(field: number, message: WireWriter): this {
    return this.bytesField(field, message.finish());
  }

  finish(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#length);
  }

  #raw(bytes: Buffer): void {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
  }
}

/** A non-negative value up to 2^32 - 1 as a varint. */
function varint(value: number): Buffer {
  if (value < 0x80) return SMALL[value]!;
  const out: number[] = [];
  let v = value >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** One-byte varints, shared: tags and short lengths are nearly all of them. */
const SMALL: readonly Buffer[] = Array.from({ length: 0x80 }, (_, i) => Buffer.from([i]));
