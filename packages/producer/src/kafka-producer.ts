import kafkajs, {
  type Kafka,
  type Producer as KafkaJsProducer,
  type Message,
  type Offsets,
  type ProducerBatch,
  type ProducerConfig,
  type ProducerRecord,
  type Transaction,
} from "kafkajs";
import type { GroupGeneration } from "./internal/group-generation.js";
import { groupByPartition } from "./internal/grouped-records.js";
import { createEncodingProducer } from "./internal/kafkajs-fast-path.js";
import { ProducerError } from "./producer-error.js";

/**
 * Options of {@link createKafkaProducer}.
 *
 * @since 0.1.0
 */
export interface KafkaProducerOptions {
  /** The kafkajs client the producer belongs to. */
  kafka: Kafka;
  /**
   * kafkajs producer configuration, passed through unchanged: transactional
   * (`transactionalId`), idempotent or plain.
   * @defaultValue `{}`
   */
  config?: ProducerConfig;
  /**
   * Who encodes the record batches of the producer's Produce requests:
   * `'auto'` Sluice's encoder when the installed kafkajs is the version it is
   * pinned to (2.2.4) and the client comes from that copy, kafkajs otherwise;
   * `'sluice'` the same, but throws `PRODUCER_ENCODER_UNAVAILABLE` instead of
   * falling back; `'kafkajs'` always kafkajs.
   * @defaultValue `'auto'`
   */
  recordEncoder?: "auto" | "sluice" | "kafkajs";
}

/**
 * A kafkajs producer made by {@link createKafkaProducer}: kafkajs's API
 * unchanged, plus which encoder writes its record batches.
 *
 * @since 0.1.0
 */
export type KafkaProducer = KafkaJsProducer & {
  /** Who encodes the record batches: Sluice's encoder or kafkajs's. */
  readonly recordEncoder: "sluice" | "kafkajs";
  /** Why kafkajs encodes, when it does. */
  readonly recordEncoderReason: string | undefined;
  /** Produce requests sent so far, by the encoder that wrote them. */
  readonly encodedRequests: { readonly sluice: number; readonly kafkajs: number };
  /**
   * True when messages that carry their `partition` reach kafkajs as one
   * message per partition (Sluice's encoder with a partitioner that honours
   * `partition`); see {@link createKafkaProducer}.
   */
  readonly groupsByPartition: boolean;
  /**
   * FindCoordinator lookups of a transactional producer: `sent` to a broker,
   * or answered without one (`cached`: from the producer's cache, or by a
   * lookup of the same coordinator in flight). kafkajs looks the coordinator
   * up before every transactional request; the producer keeps the answers
   * until a request, or finding the coordinator's broker, fails. `undefined`
   * when the producer does not cache them (not transactional, or the
   * installed kafkajs is not 2.2.4); see {@link createKafkaProducer}.
   */
  readonly coordinatorLookups: { readonly sent: number; readonly cached: number } | undefined;
};

const ENCODERS = new Set(["auto", "sluice", "kafkajs"]);

/** kafkajs's own partitioners: each returns a message's `partition` when it has one. */
const HONOURING_PARTITIONERS = new Set<unknown>([
  undefined,
  kafkajs.Partitioners.DefaultPartitioner,
  kafkajs.Partitioners.LegacyPartitioner,
  kafkajs.Partitioners.JavaCompatiblePartitioner,
]);

/**
 * Messages as one message per partition when every message carries a valid
 * partition (and there is something to group); the same array otherwise.
 */
function regroup(messages: Message[]): Message[] {
  if (messages.length < 2) return messages;
  for (const m of messages) {
    const p = m.partition;
    if (typeof p !== "number" || !Number.isInteger(p) || p < 0) return messages;
  }
  return groupByPartition(messages as (Message & { partition: number })[]) as unknown as Message[];
}

/** Makes a producer's sends (and its transactions' sends) group messages by partition. */
function groupSends(producer: KafkaJsProducer): void {
  const send = producer.send.bind(producer);
  const sendBatch = producer.sendBatch.bind(producer);
  const transaction = producer.transaction.bind(producer);
  const sendRecord =
    (fn: (r: ProducerRecord) => ReturnType<KafkaJsProducer["send"]>) => (record: ProducerRecord) =>
      fn({ ...record, messages: regroup(record.messages) });
  const sendTopics =
    (fn: (b: ProducerBatch) => ReturnType<KafkaJsProducer["sendBatch"]>) =>
    (batch: ProducerBatch) =>
      fn({
        ...batch,
        topicMessages: batch.topicMessages?.map((t) => ({ ...t, messages: regroup(t.messages) })),
      });
  producer.send = sendRecord(send);
  producer.sendBatch = sendTopics(sendBatch);
  producer.transaction = async (): Promise<Transaction> => {
    const txn = await transaction();
    txn.send = sendRecord(txn.send.bind(txn));
    txn.sendBatch = sendTopics(txn.sendBatch.bind(txn));
    return txn;
  };
}

/**
 * Creates a kafkajs producer (transactional, idempotent or plain) whose
 * Produce requests Sluice's record encoder writes: the same bytes as kafkajs
 * 2.2.4 at a fraction of the cost. Everything else is kafkajs's: metadata,
 * retries, producer ids and sequence numbers, transactions, response
 * parsing. The swap is scoped to this one producer; the client and every
 * other kafkajs producer in the process encode as before. A request the
 * encoder does not cover (a null header value, a fractional timestamp) is
 * left to kafkajs.
 *
 * With Sluice's encoder and kafkajs's own partitioner (none given, or one
 * of `Partitioners`), a topic's messages in one `send`/`sendBatch` (of the
 * producer or of a transaction) that all carry a `partition` reach kafkajs
 * as one message per partition, and kafkajs's idempotent sequence numbers
 * are translated to records: kafkajs otherwise groups a request's messages
 * by partition in time quadratic in their number, and hashes every key
 * again. Callers that want this give each message its partition (for
 * example with {@link murmur2Partitioner}, which matches kafkajs's default);
 * `groupsByPartition` says whether the producer does it.
 *
 * A transactional producer (a `transactionalId` in `config`) keeps the
 * answers of kafkajs's coordinator lookups, which kafkajs otherwise sends
 * before every transactional request (AddPartitionsToTxn, AddOffsetsToTxn,
 * TxnOffsetCommit, EndTxn), whichever `recordEncoder` is chosen: one broker
 * round trip less per call. Any failed request of the producer, or a failure
 * to reach the coordinator's broker, drops the answers, so kafkajs's retries
 * look the coordinator up again; EndTxn, AddOffsetsToTxn and TxnOffsetCommit,
 * which kafkajs does not retry, are sent once more to a freshly found
 * coordinator when theirs answers that it is not (or no longer) the
 * coordinator, or the request is lost to a connection error or a timeout.
 * AddPartitionsToTxn and AddOffsetsToTxn refused with
 * CONCURRENT_TRANSACTIONS (the previous transaction is still completing) are
 * sent again after 2, 4, 8, ... ms (at most 10 times) instead of after
 * kafkajs's retry delay. `coordinatorLookups` counts the lookups.
 *
 * @param options - see {@link KafkaProducerOptions}
 * @returns a kafkajs producer, not yet connected
 * @throws ProducerError `PRODUCER_INVALID_OPTIONS` when an option is invalid;
 *   `PRODUCER_ENCODER_UNAVAILABLE` when `recordEncoder` is `'sluice'` and the
 *   encoder cannot be used
 * @example
 * ```ts
 * const producer = createKafkaProducer({
 *   kafka,
 *   config: { transactionalId: 'job-0', idempotent: true, maxInFlightRequests: 1 },
 * });
 * await producer.connect();
 * const tx = await producer.transaction();
 * await tx.send({ topic: 'out', messages: [{ key: 'k', value: 'v' }] });
 * await tx.commit();
 * ```
 * @since 0.1.0
 */
export function createKafkaProducer(options: KafkaProducerOptions): KafkaProducer {
  if (typeof options !== "object" || options === null) {
    throw new ProducerError(
      "PRODUCER_INVALID_OPTIONS",
      "createKafkaProducer needs an options object",
    );
  }
  const { kafka, config = {}, recordEncoder = "auto" } = options;
  if (typeof kafka !== "object" || kafka === null || typeof kafka.producer !== "function") {
    throw new ProducerError(
      "PRODUCER_INVALID_OPTIONS",
      "kafka must be a kafkajs client (an object with a producer() method)",
    );
  }
  if (typeof config !== "object" || config === null) {
    throw new ProducerError(
      "PRODUCER_INVALID_OPTIONS",
      "config must be a kafkajs ProducerConfig object",
    );
  }
  if (!ENCODERS.has(recordEncoder)) {
    throw new ProducerError(
      "PRODUCER_INVALID_OPTIONS",
      `recordEncoder must be 'auto', 'sluice' or 'kafkajs', got ${JSON.stringify(recordEncoder)}`,
    );
  }
  // Messages that carry their partition can skip kafkajs's grouping by
  // partition (quadratic in a request's messages per partition) when the
  // partitioner returns that partition, as kafkajs's own partitioners do.
  const groupable = HONOURING_PARTITIONERS.has(config.createPartitioner);
  const made = createEncodingProducer(kafka, config, recordEncoder, groupable);
  if (made.groupsRecords) groupSends(made.producer);
  if (recordEncoder === "sluice" && made.encoder !== "sluice") {
    throw new ProducerError(
      "PRODUCER_ENCODER_UNAVAILABLE",
      `Sluice's record encoder is unavailable: ${made.reason}; use recordEncoder 'auto' or 'kafkajs'`,
    );
  }
  const counts = made.counts;
  const lookups = made.coordinatorLookups;
  if (made.groupGenerations) fencedGenerations.set(made.producer, made.groupGenerations);
  return Object.defineProperties(made.producer, {
    recordEncoder: { value: made.encoder, enumerable: true },
    recordEncoderReason: { value: made.reason, enumerable: true },
    groupsByPartition: { value: made.groupsRecords, enumerable: true },
    encodedRequests: {
      value: Object.freeze({
        get sluice() {
          return counts.sluice;
        },
        get kafkajs() {
          return counts.kafkajs;
        },
      }),
      enumerable: true,
    },
    coordinatorLookups: {
      value:
        lookups &&
        Object.freeze({
          get sent() {
            return lookups.sent;
          },
          get cached() {
            return lookups.cached;
          },
        }),
      enumerable: true,
    },
  }) as KafkaProducer;
}

/** The generations each fencing producer's offset commits use, by group id. */
const fencedGenerations = new WeakMap<object, Map<string, GroupGeneration>>();

/**
 * Commits a consumer group's offsets in `transaction`, fenced by the
 * consuming member's group generation (TxnOffsetCommit version 3, KIP-447):
 * the group coordinator refuses the commit when the generation or member id
 * is no longer current (kafkajs's `ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`
 * or `FENCED_INSTANCE_ID` error), so a member that lost its partitions in a
 * rebalance cannot commit for them; the transaction must then be aborted.
 * For @sluice/windowing's exactly-once jobs; not part of the supported API.
 *
 * @param producer - a transactional producer made by {@link createKafkaProducer}
 * @param transaction - the producer's open transaction
 * @param offsets - as for kafkajs's `transaction.sendOffsets`
 * @param generation - the consuming member's generation, for `offsets.consumerGroupId`
 * @throws ProducerError `PRODUCER_FENCING_UNAVAILABLE` when the producer cannot
 *   fence (not transactional, or the installed kafkajs is not the pinned
 *   version), or when the broker is older than Kafka 2.5;
 *   `PRODUCER_INVALID_OPTIONS` when the generation is for another group
 * @internal
 */
export async function sendOffsetsFenced(
  producer: KafkaProducer,
  transaction: Transaction,
  offsets: Offsets & { consumerGroupId: string },
  generation: GroupGeneration,
): Promise<void> {
  const generations = fencedGenerations.get(producer);
  if (!generations) {
    throw new ProducerError(
      "PRODUCER_FENCING_UNAVAILABLE",
      "this producer cannot fence offset commits by group generation: it is not transactional, or the installed kafkajs is not the version Sluice is pinned to",
    );
  }
  if (generation.groupId !== offsets.consumerGroupId) {
    throw new ProducerError(
      "PRODUCER_INVALID_OPTIONS",
      `the generation is for group ${JSON.stringify(generation.groupId)}, the offsets for ${JSON.stringify(offsets.consumerGroupId)}`,
    );
  }
  // A producer has one transaction at a time: the entry serves this call only.
  generations.set(offsets.consumerGroupId, generation);
  try {
    await transaction.sendOffsets(offsets);
  } finally {
    generations.delete(offsets.consumerGroupId);
  }
}
