// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of a
// Kafka record batch. Slice-by-8 tables: eight bytes per step.

const POLY = 0x82f63b78;
const TABLES: Int32Array[] = [];

function buildTables(): void {
  const t0 = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t0[n] = c;
  }
  TABLES.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = TABLES[t - 1]!;
    const next = new Int32Array(256);
    for (let n = 0; n < 256; n++) next[n] = t0[prev[n]! & 0xff]! ^ (prev[n]! >>> 8);
    TABLES.push(next);
  }
}
buildTables();
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
  Int32Array,
];

/**
 * CRC-32C of `buf[start, end)`, as an unsigned 32-bit number.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = -1;
  let i = start;
  const fast = end - ((end - start) & 7);
  while (i < fast) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      T7[a & 0xff]! ^
      T6[(a >>> 8) & 0xff]! ^
      T5[(a >>> 16) & 0xff]! ^
      T4[a >>> 24]! ^
      T3[buf[i + 4]!]! ^
      T2[buf[i + 5]!]! ^
      T1[buf[i + 6]!]! ^
      T0[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) crc = T0[(crc ^ buf[i++]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
