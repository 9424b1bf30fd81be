import type { Admin, CompressionTypes, Kafka, RecordMetadata } from "kafkajs";
import type { ChangelogMessage, ChangelogWriter } from "./changelog.js";
import { StateError } from "./state-error.js";

/**
 * Anything with kafkajs's `send`: a `Producer`, or a `Transaction` (exactly
 * once: the changelog records commit with the output and the offsets).
 *
 * @since 0.1.0
 */
export interface ChangelogProducer {
  /** kafkajs `send`. */
  send(record: {
    topic: string;
    messages: ChangelogMessage[];
    acks?: number;
    compression?: CompressionTypes;
  }): Promise<RecordMetadata[]>;
}

/**
 * Options of {@link createKafkaChangelogWriter}.
 *
 * @since 0.1.0
 */
export interface KafkaChangelogWriterOptions {
  /**
   * The producer (or transaction) to send with, or a function returning the
   * one to use now (for example the job's current transaction).
   */
  producer: ChangelogProducer | (() => ChangelogProducer);
  /** The compacted changelog topic, see `changelogTopicName`. */
  topic: string;
  /**
   * Upper bound of one produce request's payload; a checkpoint with more
   * changes is sent in several requests (keep it under the broker's
   * `message.max.bytes`).
   * @defaultValue 900000
   */
  maxRequestBytes?: number;
  /**
   * Requests of one checkpoint in flight at once. Within a checkpoint every
   * entry appears once, so their order does not matter.
   * @defaultValue 4
   */
  concurrency?: number;
  /** Compression codec, as in kafkajs. @defaultValue none */
  compression?: CompressionTypes;
}

/**
 * A {@link ChangelogWriter} that produces each checkpoint's changes to the
 * changelog partition equal to the source partition, with `acks: -1`, and
 * reports the next changelog offset so later restores replay only the delta.
 *
 * @param opts - producer, topic and request sizing
 * @returns the writer to pass as `openStateStore({ changelog })`
 * @throws StateError `STATE_INVALID_OPTIONS` on malformed options
 * @example
 * ```ts
 * const producer = kafka.producer({ idempotent: true });
 * await producer.connect();
 * const store = await openStateStore({
 *   dir, name: "counts",
 *   changelog: createKafkaChangelogWriter({ producer, topic: changelogTopicName("agg", "counts") }),
 * });
 * ```
 * @since 0.1.0
 */
export function createKafkaChangelogWriter(opts: KafkaChangelogWriterOptions): ChangelogWriter {
  if (
    typeof opts !== "object" ||
    opts === null ||
    typeof opts.topic !== "string" ||
    opts.topic === ""
  ) {
    throw new StateError(
      "STATE_INVALID_OPTIONS",
      "createKafkaChangelogWriter needs { producer, topic }",
    );
  }
  const producer = opts.producer;
  if (typeof producer !== "function" && typeof producer?.send !== "function") {
    throw new StateError(
      "STATE_INVALID_OPTIONS",
      "producer must be a kafkajs Producer or Transaction (with send())",
    );
  }
  const maxBytes = opts.maxRequestBytes ?? 900_000;
  const concurrency = opts.concurrency ?? 4;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) {
    throw new StateError(
      "STATE_INVALID_OPTIONS",
      `maxRequestBytes must be an integer >= 1024; got ${String(maxBytes)}`,
    );
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new StateError(
      "STATE_INVALID_OPTIONS",
      `concurrency must be a positive integer; got ${String(concurrency)}`,
    );
  }
  return {
    async write(_partition, messages) {
      const p = typeof producer === "function" ? producer() : producer;
      const chunks: ChangelogMessage[][] = [];
      let chunk: ChangelogMessage[] = [];
      let bytes = 0;
      for (const m of messages) {
        const size = m.key.length + (m.value?.length ?? 0) + 32;
        if (chunk.length > 0 && bytes + size > maxBytes) {
          chunks.push(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(m);
        bytes += size;
      }
      if (chunk.length > 0) chunks.push(chunk);
      let next = -1n;
      let i = 0;
      const worker = async () => {
        while (i < chunks.length) {
          const c = chunks[i++]!;
          const record: Parameters<ChangelogProducer["send"]>[0] = {
            topic: opts.topic,
            messages: c,
            acks: -1,
          };
          if (opts.compression !== undefined) record.compression = opts.compression;
          const meta = await p.send(record);
          for (const m of meta) {
            if (m.baseOffset === undefined) continue;
            const end = BigInt(m.baseOffset) + BigInt(c.length);
            if (end > next) next = end;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, worker));
      return next >= 0n ? { nextOffset: next.toString() } : undefined;
    },
  };
}

/**
 * Options of {@link createChangelogTopic}.
 *
 * @since 0.1.0
 */
export interface CreateChangelogTopicOptions {
  /** A kafkajs `Kafka` client (an admin is created and closed) or a connected `Admin`. */
  kafka: Kafka | Admin;
  /** Topic name, see `changelogTopicName`. */
  topic: string;
  /** Partitions: the number of partitions of the source topic. */
  numPartitions: number;
  /** Replication factor. @defaultValue the broker's default */
  replicationFactor?: number;
}

/**
 * Creates a compacted changelog topic (`cleanup.policy=compact`) when it
 * does not exist yet.
 *
 * @param opts - client, topic, partitions
 * @returns whether the topic was created (false: it existed)
 * @throws StateError `STATE_INVALID_OPTIONS` when an existing topic has another partition count; kafkajs errors otherwise
 * @example
 * ```ts
 * await createChangelogTopic({ kafka, topic: changelogTopicName("agg", "counts"), numPartitions: 12 });
 * ```
 * @since 0.1.0
 */
export async function createChangelogTopic(opts: CreateChangelogTopicOptions): Promise<boolean> {
  const own = "admin" in opts.kafka && typeof opts.kafka.admin === "function";
  const admin: Admin = own ? (opts.kafka as Kafka).admin() : (opts.kafka as Admin);
  if (own) await admin.connect();
  try {
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: opts.topic,
          numPartitions: opts.numPartitions,
          replicationFactor: opts.replicationFactor ?? -1,
          configEntries: [{ name: "cleanup.policy", value: "compact" }],
        },
      ],
    });
    if (!created) {
      const md = await admin.fetchTopicMetadata({ topics: [opts.topic] });
      const n = md.topics[0]?.partitions.length;
      if (n !== opts.numPartitions) {
        throw new StateError(
          "STATE_INVALID_OPTIONS",
          `changelog topic ${opts.topic} has ${String(n)} partitions, the source has ${opts.numPartitions}; they must match`,
        );
      }
    }
    return created;
  } finally {
    if (own) await admin.disconnect();
  }
}
