import { randomInt } from "node:crypto";
import { murmur2 } from "./internal/murmur2.js";

/**
 * Chooses the partition of a record.
 *
 * @param key - the record key (`null` when the event has none)
 * @param partitionCount - number of partitions of the topic
 * @returns a partition number in `[0, partitionCount)`
 * @since 0.1.0
 */
export type Partitioner = (key: Buffer | null, partitionCount: number) => number;

/**
 * The default partitioner: `(murmur2(key) & 0x7fffffff) % partitionCount`,
 * byte-identical to the Java client's `DefaultPartitioner` (and kafkajs's
 * `Partitioners.DefaultPartitioner`, which computes the same numbers far more
 * slowly), so JVM producers and consumers co-partition with Sluice. Records
 * without a key go round-robin.
 *
 * @returns a partitioner
 * @example
 * ```ts
 * murmur2Partitioner()(Buffer.from('user-42'), 12) // same partition as the Java client
 * ```
 * @since 0.1.0
 */
export function murmur2Partitioner(): Partitioner {
  let counter = randomInt(0x7fffffff);
  return (key, partitionCount) => {
    if (key === null) {
      counter = (counter + 1) & 0x7fffffff;
      return counter % partitionCount;
    }
    return (murmur2(key) & 0x7fffffff) % partitionCount;
  };
}
