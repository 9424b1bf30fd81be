import fc from "fast-check";
import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { murmur2Partitioner } from "../src/index.js";

// Test vectors of the Java client's murmur2 (Apache Kafka, UtilsTest#testMurmur2):
// key bytes -> signed 32-bit hash. The Java DefaultPartitioner picks
// (hash & 0x7fffffff) % partitionCount.
const javaVectors: Array<[string, number]> = [
  ["21", -973932308],
  ["foobar", -790332482],
  ["a-little-bit-long-string", -985981536],
  ["a-little-bit-longer-string", -1486304829],
  ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
  ["abc", 479470107],
];

describe("murmur2Partitioner", () => {
  it("matches the Java client's partition for its published murmur2 vectors", () => {
    const partition = murmur2Partitioner();
    for (const [key, hash] of javaVectors) {
      for (const n of [1, 2, 3, 7, 12, 100, 1009, 65_521]) {
        expect(partition(Buffer.from(key, "utf8"), n), `${key} % ${n}`).toBe(
          (hash & 0x7fffffff) % n,
        );
      }
    }
  });

  it("is deterministic per key and spreads keyless records over partitions", () => {
    const partition = murmur2Partitioner();
    expect(partition(Buffer.from("user-1"), 12)).toBe(partition(Buffer.from("user-1"), 12));
    const seen = new Set<number>();
    for (let i = 0; i < 48; i++) seen.add(partition(null, 12));
    expect(seen.size).toBe(12);
  });

  it("agrees with kafkajs's DefaultPartitioner on random keys and partition counts", () => {
    const ours = murmur2Partitioner();
    const theirs = kafkajs.Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.integer({ min: 1, max: 500 }),
        (bytes, n) => {
          const key = Buffer.from(bytes);
          const partitionMetadata = Array.from({ length: n }, (_, i) => ({
            partitionId: i,
            leader: 0,
          }));
          const expected = theirs({
            topic: "t",
            partitionMetadata: partitionMetadata as never,
            message: { key, value: null },
          });
          expect(ours(key, n)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
