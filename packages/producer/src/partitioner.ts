import kafkajs from "kafkajs";

const { Partitioners } = kafkajs;

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
 * The default partitioner: murmur2 of the key, positive, modulo the partition
 * count — byte-identical to the Java client's `DefaultPartitioner`, so JVM
 * producers and consumers co-partition with Sluice. It is kafkajs's
 * `Partitioners.DefaultPartitioner`. Records without a key go round-robin.
 *
 * @returns a partitioner
 * @example
 * ```ts
 * murmur2Partitioner()(Buffer.from('user-42'), 12) // same partition as the Java client
 * ```
 * @since 0.1.0
 */
export function murmur2Partitioner(): Partitioner {
  const inner = Partitioners.DefaultPartitioner();
  const metadataCache: Array<{ partitionId: number; leader: number }[]> = [];
  return (key, partitionCount) => {
    let partitionMetadata = metadataCache[partitionCount];
    if (!partitionMetadata) {
      partitionMetadata = Array.from({ length: partitionCount }, (_, i) => ({
        partitionId: i,
        leader: 0,
      }));
      metadataCache[partitionCount] = partitionMetadata;
    }
    return inner({
      topic: "",
      partitionMetadata: partitionMetadata as never,
      message: { key, value: null },
    });
  };
}
