// A small HyperLogLog (Flajolet et al. 2007) with the standard small-range
// (linear counting) correction. 2^p registers of one byte; relative standard
// error ≈ 1.04 / sqrt(2^p): p = 12 → 4096 registers, ≈ 1.6 %.

/** 32-bit MurmurHash3 (x86) of a string's UTF-16 code units. */
export function murmur3(text: string, seed = 0): number {
  let h = seed >>> 0;
  const len = text.length;
  let i = 0;
  for (; i + 1 < len; i += 2) {
    let k = (text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function hllCreate(precision: number): Uint8Array {
  return new Uint8Array(1 << precision);
}

export function hllAdd(registers: Uint8Array, precision: number, value: string): void {
  const h = murmur3(value);
  // A second, independent hash supplies the bits for the rank, so precision
  // up to 16 still leaves 32 bits to count leading zeros in.
  const idx = h >>> (32 - precision);
  const w = murmur3(value, 0x9747b28c);
  const rank = Math.min(Math.clz32(w) + 1, 33);
  if (rank > (registers[idx] ?? 0)) registers[idx] = rank;
}

export function hllMerge(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.max(a[i] ?? 0, b[i] ?? 0);
  return out;
}

export function hllEstimate(registers: Uint8Array): number {
  const m = registers.length;
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < m; i++) {
    const r = registers[i] ?? 0;
    sum += 2 ** -r;
    if (r === 0) zeros++;
  }
  const alpha = m === 16 ? 0.673 : m === 32 ? 0.697 : m === 64 ? 0.709 : 0.7213 / (1 + 1.079 / m);
  const raw = (alpha * m * m) / sum;
  if (raw <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros));
  return Math.round(raw);
}
