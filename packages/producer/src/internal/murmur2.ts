/**
 * Kafka's murmur2 (MurmurHash2, 32-bit, seed 0x9747b28c) over key bytes, as
 * the Java client's `Utils.murmur2` computes it. Written with `Math.imul`
 * because kafkajs's version runs on BigInt-backed longs (~10 µs per key,
 * measured), which dominated the producer's per-event cost. Verified against
 * the Java client's vectors and against kafkajs on random keys.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  const base = length & ~3;
  if (rest === 3) h ^= data[base + 2]! << 16;
  if (rest >= 2) h ^= data[base + 1]! << 8;
  if (rest >= 1) {
    h ^= data[base]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
