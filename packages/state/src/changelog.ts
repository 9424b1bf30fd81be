/**
 * One state change produced by a checkpoint, in changelog form. `key` is the
 * entry's identity inside its partition (so a compacted topic keeps only the
 * latest value per entry); `value` is the stored bytes, or `null` for a
 * deletion (a tombstone, which compaction eventually drops).
 *
 * @since 0.1.0
 */
export interface ChangelogMutation {
  /** Entry identity: partition (4 bytes) + type byte + key [+ window start]; equal to its LevelDB key. */
  readonly key: Buffer;
  /** Stored bytes, or `null` when the entry was deleted. */
  readonly value: Buffer | null;
}

/**
 * A Kafka message as accepted by kafkajs `producer.send({ topic, messages })`.
 *
 * @since 0.1.0
 */
export interface ChangelogMessage {
  /** Message key: the entry identity. */
  key: Buffer;
  /** Message value, `null` for a tombstone. */
  value: Buffer | null;
  /** Changelog partition (the source partition), when given to {@link encodeChangelog}. */
  partition?: number;
}

/**
 * Receives the encoded mutations of every checkpoint before the checkpoint is
 * written locally (see `StateStoreOptions.changelog`). Resolve with the offset
 * of the changelog record that will follow the last one written (its "next
 * offset"); it is kept in the checkpoint so a later restore replays only what
 * came after. Reject to fail the checkpoint: nothing is written locally.
 *
 * @example
 * ```ts
 * const writer: ChangelogWriter = {
 *   async write(partition, messages) {
 *     const [meta] = await transaction.send({ topic, messages });
 *     return { nextOffset: String(Number(meta.baseOffset) + messages.length) };
 *   },
 * };
 * ```
 * @since 0.1.0
 */
export interface ChangelogWriter {
  /**
   * @param partition - the source partition, which is also the changelog partition
   * @param messages - the checkpoint's changes, each carrying `partition`
   * @returns the next changelog offset after these messages, when known
   */
  write(
    partition: number,
    messages: ChangelogMessage[],
  ): Promise<{ nextOffset?: string | number } | undefined>;
}

/**
 * Encodes checkpoint mutations as Kafka messages for the changelog topic.
 * The message key is the entry identity, so log compaction keeps the latest
 * value of each entry; deletions become tombstones (`value: null`).
 *
 * @param mutations - what `StateStore.checkpoint` returned
 * @param partition - when given, set on every message (the changelog partition must equal the source partition)
 * @returns messages for `producer.send({ topic, messages })`
 * @example
 * ```ts
 * const mutations = await store.checkpoint({ partition: 3, sourceOffset, streamTime });
 * await producer.send({ topic: changelogTopicName("app", "counts"), messages: encodeChangelog(mutations, 3) });
 * ```
 * @since 0.1.0
 */
export function encodeChangelog(
  mutations: readonly ChangelogMutation[],
  partition?: number,
): ChangelogMessage[] {
  const out: ChangelogMessage[] = new Array(mutations.length);
  for (let i = 0; i < mutations.length; i++) {
    const m = mutations[i]!;
    out[i] =
      partition === undefined
        ? { key: m.key, value: m.value }
        : { key: m.key, value: m.value, partition };
  }
  return out;
}

/**
 * The changelog topic of a store: `<applicationId>.<store>.changelog`. It
 * must be compacted (`cleanup.policy=compact`) and have as many partitions as
 * the source topic.
 *
 * @param applicationId - the job's application id (consumer group)
 * @param store - the store name given to `openStateStore`
 * @returns the topic name
 * @example
 * ```ts
 * changelogTopicName("aggregator", "counts") // "aggregator.counts.changelog"
 * ```
 * @since 0.1.0
 */
export function changelogTopicName(applicationId: string, store: string): string {
  return `${applicationId}.${store}.changelog`;
}
