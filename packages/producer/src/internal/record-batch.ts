// Kafka Produce request bodies (versions 3 to 8 share one layout) with
// record batches of magic 2, written in one pass into one buffer per batch.
// The output is byte for byte what kafkajs 2.2.4 writes for the same
// arguments (`protocol/requests/produce/v3/request.js`, `recordBatch/v0`,
// `recordBatch/record/v0`), including its choice of first and max
// timestamp, so the broker sees the same bytes and the idempotent
// producer's sequence numbers keep their meaning. Anything this encoder does
// not cover makes it answer `undefined`, and the caller lets kafkajs encode.
import { crc32c } from "./crc32c.js";

/** A message as kafkajs's producer hands it to the Produce request. */
export interface MessageLike {
  key?: Buffer | string | null;
  value?: Buffer | string | null;
  headers?: Record<string, unknown>;
  timestamp?: string | number | null;
}

/** The arguments kafkajs's `broker.produce()` passes to the Produce request. */
export interface ProduceArgs {
  topicData: ReadonlyArray<{
    topic: string;
    partitions: ReadonlyArray<{
      partition: number;
      firstSequence?: number;
      messages: readonly MessageLike[];
    }>;
  }>;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  acks?: number;
  timeout?: number;
  compression?: number;
}

/** A kafkajs compression codec (`CompressionCodecs[type]()`). */
export interface CodecLike {
  compress(encoder: { buffer: Buffer; buf: Buffer; offset: number }): Promise<Buffer> | Buffer;
}

const COMPRESSION_CODEC_MASK = 0x07;
const TRANSACTIONAL_MASK = 16;
const MAGIC = 2;
/** Record batch header after the base offset and length: epoch..records count. */
const BATCH_HEADER = 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

class Unsupported extends Error {}

const keyBytes = new Map<string, Buffer>();
function headerKey(k: string): Buffer {
  let b = keyBytes.get(k);
  if (b === undefined) {
    b = Buffer.from(k, "utf8");
    if (keyBytes.size < 1024) keyBytes.set(k, b);
  }
  return b;
}

function sizeOfUVarInt(z: number): number {
  if (z < 0x80) return 1;
  if (z < 0x4000) return 2;
  if (z < 0x200000) return 3;
  if (z < 0x10000000) return 4;
  return 5;
}

/** Zig-zag of a 32-bit signed value, as an unsigned number. */
function zigzag32(v: number): number {
  return ((v << 1) ^ (v >> 31)) >>> 0;
}

function sizeOfVarInt(v: number): number {
  return sizeOfUVarInt(zigzag32(v));
}

function writeUVarInt(buf: Buffer, off: number, z: number): number {
  while (z > 0x7f) {
    buf[off++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[off++] = z;
  return off;
}

function zigzag64(v: number): bigint {
  const b = BigInt(v);
  return BigInt.asUintN(64, (b << 1n) ^ (b >> 63n));
}

function sizeOfVarLong(v: number): number {
  if (v >= INT32_MIN && v <= INT32_MAX) return sizeOfUVarInt(zigzag32(v));
  let z = zigzag64(v);
  let n = 1;
  while (z > 0x7fn) {
    n++;
    z >>= 7n;
  }
  return n;
}

function writeVarLong(buf: Buffer, off: number, v: number): number {
  if (v >= INT32_MIN && v <= INT32_MAX) return writeUVarInt(buf, off, zigzag32(v));
  let z = zigzag64(v);
  while (z > 0x7fn) {
    buf[off++] = Number(z & 0x7fn) | 0x80;
    z >>= 7n;
  }
  buf[off++] = Number(z);
  return off;
}

/** Bytes of a key, value or header value (-1 for null). */
function lengthOf(v: unknown): number {
  if (v === null || v === undefined) return -1;
  if (Buffer.isBuffer(v)) return v.length;
  if (typeof v === "string") return Buffer.byteLength(v, "utf8");
  throw new Unsupported();
}

function writeBytes(buf: Buffer, off: number, v: unknown, len: number): number {
  off = writeUVarInt(buf, off, zigzag32(len));
  if (len <= 0) return off;
  if (typeof v === "string") buf.write(v, off, len, "utf8");
  else (v as Buffer).copy(buf, off);
  return off + len;
}

function toBigInt64(v: unknown, fallback: bigint): bigint {
  if (v === undefined) return fallback;
  if (typeof v === "bigint") return BigInt.asIntN(64, v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Unsupported();
    return BigInt(v);
  }
  if (typeof v === "string") return BigInt(v);
  const inner = (v as { value?: unknown } | null)?.value;
  if (typeof inner === "bigint") return inner;
  throw new Unsupported();
}

function timestampNumber(v: unknown): number {
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw new Unsupported();
  return n;
}

/** Size of a record's headers (count and entries), in kafkajs's order and layout. */
function sizeOfHeaders(headers: Record<string, unknown> | undefined): number {
  if (!headers) return sizeOfVarInt(0);
  let count = 0;
  let size = 0;
  for (const k of Object.keys(headers)) {
    const v = headers[k];
    const hk = headerKey(k);
    if (Array.isArray(v)) {
      for (const x of v) {
        const l = headerValueLength(x);
        size += sizeOfVarInt(hk.length) + hk.length + sizeOfVarInt(l) + l;
        count++;
      }
    } else {
      const l = headerValueLength(v);
      size += sizeOfVarInt(hk.length) + hk.length + sizeOfVarInt(l) + l;
      count++;
    }
  }
  return sizeOfVarInt(count) + size;
}

/** kafkajs cannot size a null header value; such records are left to it. */
function headerValueLength(v: unknown): number {
  if (typeof v === "string") return Buffer.byteLength(v, "utf8");
  if (Buffer.isBuffer(v)) return v.length;
  throw new Unsupported();
}

function writeHeaders(
  buf: Buffer,
  off: number,
  headers: Record<string, unknown> | undefined,
): number {
  if (!headers) return writeUVarInt(buf, off, zigzag32(0));
  const keys = Object.keys(headers);
  let count = 0;
  for (const k of keys) {
    const v = headers[k];
    count += Array.isArray(v) ? v.length : 1;
  }
  off = writeUVarInt(buf, off, zigzag32(count));
  for (const k of keys) {
    const v = headers[k];
    const hk = headerKey(k);
    if (Array.isArray(v)) {
      for (const x of v) {
        off = writeBytes(buf, off, hk, hk.length);
        off = writeBytes(buf, off, x, headerValueLength(x));
      }
    } else {
      off = writeBytes(buf, off, hk, hk.length);
      off = writeBytes(buf, off, v, headerValueLength(v));
    }
  }
  return off;
}

/**
 * The records of one batch, uncompressed, and the batch's first and max
 * timestamps as kafkajs chooses them (string order of the timestamps given,
 * `dateNow` when none is).
 */
export function encodeRecords(
  messages: readonly MessageLike[],
  dateNow: number,
): { records: Buffer; firstTimestamp: bigint; maxTimestamp: bigint } {
  const n = messages.length;
  let first: unknown;
  let max: unknown;
  let firstS = "";
  let maxS = "";
  for (let i = 0; i < n; i++) {
    const t = messages[i]!.timestamp;
    if (t === null || t === undefined) continue;
    const s = typeof t === "string" ? t : String(t);
    if (first === undefined || s < firstS) {
      first = t;
      firstS = s;
    }
    if (max === undefined || s > maxS) {
      max = t;
      maxS = s;
    }
  }
  if (first === undefined) {
    first = dateNow;
    max = dateNow;
  }
  const firstNum = timestampNumber(first);
  const firstTimestamp = toBigInt64(typeof first === "string" ? first : firstNum, 0n);
  const maxTimestamp = toBigInt64(typeof max === "string" ? max : timestampNumber(max), 0n);

  const bodySizes = new Int32Array(n);
  const deltas = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    const ts = m.timestamp || dateNow;
    const delta = timestampNumber(ts) - firstNum;
    deltas[i] = delta;
    const kl = lengthOf(m.key);
    const vl = lengthOf(m.value);
    const hsize = sizeOfHeaders(m.headers);
    const body =
      1 +
      sizeOfVarLong(delta) +
      sizeOfVarInt(i) +
      sizeOfVarInt(kl) +
      Math.max(kl, 0) +
      sizeOfVarInt(vl) +
      Math.max(vl, 0) +
      hsize;
    bodySizes[i] = body;
    total += sizeOfVarInt(body) + body;
  }
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    off = writeUVarInt(buf, off, zigzag32(bodySizes[i]!));
    buf[off++] = 0;
    off = writeVarLong(buf, off, deltas[i]!);
    off = writeUVarInt(buf, off, zigzag32(i));
    off = writeBytes(buf, off, m.key, lengthOf(m.key));
    off = writeBytes(buf, off, m.value, lengthOf(m.value));
    off = writeHeaders(buf, off, m.headers);
  }
  if (off !== total) throw new Error(`record encoder wrote ${off} bytes, sized ${total}`);
  return { records: buf, firstTimestamp, maxTimestamp };
}

/**
 * One partition's record set: base offset, batch length, then the batch.
 */
export async function encodeRecordBatch(options: {
  messages: readonly MessageLike[];
  compression: number;
  codec: CodecLike | undefined;
  producerId: bigint;
  producerEpoch: number;
  firstSequence: number;
  transactional: boolean;
  dateNow: number;
}): Promise<Buffer> {
  const { messages } = options;
  const { records, firstTimestamp, maxTimestamp } = encodeRecords(messages, options.dateNow);
  let payload = records;
  if (options.compression !== 0) {
    if (!options.codec) throw new Unsupported();
    payload = await options.codec.compress({
      buffer: records,
      buf: records,
      offset: records.length,
    });
  }
  const batchLength = BATCH_HEADER + payload.length;
  const out = Buffer.allocUnsafe(8 + 4 + batchLength);
  out.writeBigInt64BE(0n, 0); // base offset
  out.writeInt32BE(batchLength, 8);
  out.writeInt32BE(0, 12); // partition leader epoch
  out.writeInt8(MAGIC, 16);
  // 17..20: CRC-32C of everything after it, written last
  const attributes =
    (options.compression & COMPRESSION_CODEC_MASK) |
    (options.transactional ? TRANSACTIONAL_MASK : 0);
  out.writeInt16BE(attributes, 21);
  out.writeInt32BE(messages.length - 1, 23);
  out.writeBigInt64BE(firstTimestamp, 27);
  out.writeBigInt64BE(maxTimestamp, 35);
  out.writeBigInt64BE(options.producerId, 43);
  out.writeInt16BE(options.producerEpoch, 51);
  out.writeInt32BE(options.firstSequence, 53);
  out.writeInt32BE(messages.length, 57);
  payload.copy(out, 61);
  out.writeUInt32BE(crc32c(out, 21, out.length), 17);
  return out;
}

/**
 * The body of a Produce request (versions 3 to 8) for kafkajs's arguments,
 * or `undefined` when some message is outside what this encoder covers
 * (kafkajs then encodes it itself).
 *
 * @param args - what kafkajs's `broker.produce()` receives
 * @param lookupCodec - the registered codec of a compression type
 */
export async function encodeProduceRequest(
  args: ProduceArgs,
  lookupCodec: (type: number) => CodecLike | undefined,
): Promise<Buffer | undefined> {
  try {
    const transactionalId = args.transactionalId === undefined ? null : args.transactionalId;
    const compression = args.compression ?? 0;
    const codec = compression === 0 ? undefined : lookupCodec(compression);
    const producerId = toBigInt64(args.producerId, -1n);
    const producerEpoch = args.producerEpoch ?? 0;
    const parts: Buffer[] = [];
    let size = 0;
    const head = Buffer.allocUnsafe(
      2 + (transactionalId === null ? 0 : Buffer.byteLength(transactionalId)) + 2 + 4 + 4,
    );
    let o = 0;
    if (transactionalId === null) {
      o = head.writeInt16BE(-1, o);
    } else {
      const l = Buffer.byteLength(transactionalId);
      o = head.writeInt16BE(l, o);
      o += head.write(transactionalId, o, l, "utf8");
    }
    o = head.writeInt16BE(args.acks ?? -1, o);
    o = head.writeInt32BE(args.timeout ?? 30000, o);
    o = head.writeInt32BE(args.topicData.length, o);
    parts.push(head);
    size += head.length;
    for (const t of args.topicData) {
      const tl = Buffer.byteLength(t.topic);
      const th = Buffer.allocUnsafe(2 + tl + 4);
      th.writeInt16BE(tl, 0);
      th.write(t.topic, 2, tl, "utf8");
      th.writeInt32BE(t.partitions.length, 2 + tl);
      parts.push(th);
      size += th.length;
      for (const p of t.partitions) {
        if (p.messages.length === 0) return undefined;
        const dateNow = Date.now();
        const batch = await encodeRecordBatch({
          messages: p.messages,
          compression,
          codec,
          producerId,
          producerEpoch,
          firstSequence: p.firstSequence ?? 0,
          transactional: !!transactionalId,
          dateNow,
        });
        const ph = Buffer.allocUnsafe(8);
        ph.writeInt32BE(p.partition, 0);
        ph.writeInt32BE(batch.length, 4);
        parts.push(ph, batch);
        size += 8 + batch.length;
      }
    }
    return Buffer.concat(parts, size);
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}
