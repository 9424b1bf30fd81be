// Byte layout of the LevelDB keys. Every key starts with the source partition
// as a 4-byte big-endian prefix, so one partition's state is one contiguous
// range that can be iterated, wiped or restored alone. Then a type byte:
//   0x00 meta      P 00 <name>                         -> JSON
//   0x01 kv        P 01 <utf8 key>                     -> encoded value
//   0x02 window    P 02 <u32 len><utf8 key><start:8>   -> <end:8><encoded value>
//   0x03 index     P 03 <end:8><start:8><utf8 key>     -> (empty)
// Timestamps are 8-byte big-endian with the sign bit flipped, so byte order
// equals numeric order for every safe integer, negative ones included.
// The changelog key of an entry is its LevelDB key, partition included (the
// changelog partition is the source partition, so restore writes it as is).

export const T_META = 0x00;
export const T_KV = 0x01;
export const T_WINDOW = 0x02;
export const T_INDEX = 0x03;

/** Partition number reserved for store-wide metadata. */
export const GLOBAL_PARTITION = 0xffffffff;

const TWO_32 = 2 ** 32;

export function writeTime(buf: Buffer, offset: number, t: number): void {
  const hi = Math.floor(t / TWO_32);
  const lo = t - hi * TWO_32;
  buf.writeUInt32BE((hi + 0x80000000) >>> 0, offset);
  buf.writeUInt32BE(lo >>> 0, offset + 4);
}

export function readTime(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32BE(offset) - 0x80000000;
  return hi * TWO_32 + buf.readUInt32BE(offset + 4);
}

export function partitionPrefix(partition: number, type?: number): Buffer {
  const b = Buffer.allocUnsafe(type === undefined ? 4 : 5);
  b.writeUInt32BE(partition >>> 0, 0);
  if (type !== undefined) b[4] = type;
  return b;
}

/** Exclusive upper bound of everything starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.alloc(end.length + 1, 0xff);
}

export function metaKey(partition: number, name: string): Buffer {
  const n = Buffer.byteLength(name);
  const b = Buffer.allocUnsafe(5 + n);
  b.writeUInt32BE(partition >>> 0, 0);
  b[4] = T_META;
  b.write(name, 5, "utf8");
  return b;
}

export function kvKey(partition: number, key: string): Buffer {
  const n = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(5 + n);
  b.writeUInt32BE(partition >>> 0, 0);
  b[4] = T_KV;
  b.write(key, 5, "utf8");
  return b;
}

/** Prefix of every window of one key (partition, type, length, key). */
export function windowKeyPrefix(partition: number, key: string): Buffer {
  const n = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(9 + n);
  b.writeUInt32BE(partition >>> 0, 0);
  b[4] = T_WINDOW;
  b.writeUInt32BE(n, 5);
  b.write(key, 9, "utf8");
  return b;
}

export function windowKey(partition: number, key: string, start: number): Buffer {
  const n = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(17 + n);
  b.writeUInt32BE(partition >>> 0, 0);
  b[4] = T_WINDOW;
  b.writeUInt32BE(n, 5);
  b.write(key, 9, "utf8");
  writeTime(b, 9 + n, start);
  return b;
}

/** Decodes the key and start of a window LevelDB key (with partition prefix). */
export function parseWindowKey(b: Buffer): { key: string; start: number } {
  const n = b.readUInt32BE(5);
  return { key: b.toString("utf8", 9, 9 + n), start: readTime(b, 9 + n) };
}

export function indexKey(partition: number, end: number, start: number, key: string): Buffer {
  const n = Buffer.byteLength(key);
  const b = Buffer.allocUnsafe(21 + n);
  b.writeUInt32BE(partition >>> 0, 0);
  b[4] = T_INDEX;
  writeTime(b, 5, end);
  writeTime(b, 13, start);
  b.write(key, 21, "utf8");
  return b;
}

export function parseIndexKey(b: Buffer): { end: number; start: number; key: string } {
  return { end: readTime(b, 5), start: readTime(b, 13), key: b.toString("utf8", 21) };
}

/** Window value on disk: <end:8><encoded value>. */
export function windowValue(end: number, encoded: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(8 + encoded.length);
  writeTime(b, 0, end);
  b.set(encoded, 8);
  return b;
}

// Cache keys: strings, cheaper to hash than Buffers. The key of a window ends
// with the last NUL and the decimal start, so it is unambiguous.
export function kvCacheKey(partition: number, key: string): string {
  return `${partition}\u0001${key}`;
}

export function windowCacheKey(partition: number, key: string, start: number): string {
  return `${partition}\u0002${key}\u0000${start}`;
}
