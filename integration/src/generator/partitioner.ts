import { Partitioners } from "kafkajs";

/**
 * The partition Kafka's default (murmur2, Java-compatible) partitioner picks for
 * `key` on a topic with `partitions` partitions — the same function the
 * producer uses, so the generator knows which partition each event lands on.
 *
 * @param partitions - number of partitions of the topic
 * @returns a function from key to partition
 */
export function createKeyPartitioner(partitions: number): (key: string) => number {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return (key) =>
    partitioner({ topic: "events", partitionMetadata, message: { key, value: null } });
}
