// Sluice's own read_committed filter for the consumers a job creates.
//
// kafkajs 2.2.4 decides which fetched records belong to aborted transactions
// in `consumer/filterAbortedMessages.js`: it takes the broker's list of
// aborted transactions in the order given and activates at most one entry per
// record it walks. When several aborted transactions overlap in a partition
// (started in one order and aborted in another, or a fetch that begins after
// two of them started) it delivers records of aborted transactions.
//
// This module decides the way the Java consumer does: before each record
// batch of a transactional producer, every aborted transaction whose first
// offset is at or before the batch's LAST offset becomes active for its
// producer id; an abort marker of that producer ends it; a transactional
// batch of an active producer is aborted as a whole. Aborted records are
// flagged as control records and kafkajs is handed an empty aborted list, so
// kafkajs drops them like markers while they still count for offsets (a
// fetch of only aborted records resolves past them, never loops).
//
// Scope: the wrap is made on the private cluster kafkajs creates for one
// consumer (reached through `kafka.consumer` called on a prototype child of
// the client) and on that cluster's broker objects only. Nothing shared is
// touched, so other kafkajs consumers in the process behave as before (the
// private-cluster plumbing is @sluice/producer's, shared with its record
// encoder). It is pinned to one kafkajs version (PINNED_KAFKAJS_VERSION); on
// any other version or shape the consumer keeps kafkajs's own filter and a
// warning is emitted once.
import { onPrivateCluster, pinnedKafkajsCheck } from "@sluice/producer";
import kafkajs, { type Consumer, type ConsumerConfig, type Kafka } from "kafkajs";

const { Kafka: KafkaClass } = kafkajs;

/** What a record batch tells about itself (kafkajs's `batchContext`). */
export interface FetchedBatchContext {
  firstOffset: string;
  lastOffsetDelta: number;
  producerId: string;
  inTransaction: boolean;
  isControlBatch: boolean;
}

/** A record as kafkajs decodes it from a fetch response. */
export interface FetchedRecord {
  offset: string;
  key: Buffer | null;
  isControlRecord?: boolean;
  batchContext?: FetchedBatchContext;
}

/** One aborted transaction as listed by the broker. */
export interface AbortedTransaction {
  producerId: string;
  firstOffset: string;
}

/** One partition of a fetch response, as kafkajs decodes it. */
export interface FetchedPartition {
  abortedTransactions?: AbortedTransaction[] | null;
  messages?: FetchedRecord[];
}

/** A control record's type is the int16 after its int16 version; ABORT is 0. */
function isAbortMarker(record: FetchedRecord): boolean {
  const key = record.key;
  return !!key && key.length >= 4 && key.readInt16BE(2) === 0;
}

/**
 * Decides which records of one fetched partition belong to aborted
 * transactions, the way the Java consumer does, flags them as control records
 * (kafkajs then drops them but still counts their offsets) and empties the
 * partition's aborted-transaction list (so kafkajs's own filter passes every
 * record through).
 *
 * @param partition - one partition of a decoded fetch response; changed in place
 * @returns the number of records flagged as aborted
 */
export function markAbortedRecords(partition: FetchedPartition): number {
  const listed = partition.abortedTransactions;
  if (!listed || listed.length === 0) return 0;
  const pending = listed
    .map((t) => ({ producerId: String(t.producerId), first: BigInt(t.firstOffset) }))
    .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  partition.abortedTransactions = [];
  const records = partition.messages ?? [];
  const active = new Set<string>();
  let next = 0;
  let current: FetchedBatchContext | undefined;
  let aborted = false;
  let marked = 0;
  for (const record of records) {
    const batch = record.batchContext;
    if (!batch) {
      // legacy message set: never transactional
      current = undefined;
      aborted = false;
      continue;
    }
    if (current === undefined || batch.firstOffset !== current.firstOffset) {
      current = batch;
      aborted = false;
      // a producer id of -1: a batch without one (never transactional)
      if (!String(batch.producerId).startsWith("-")) {
        if (next < pending.length) {
          const last = BigInt(batch.firstOffset) + BigInt(batch.lastOffsetDelta);
          while (next < pending.length && (pending[next] as { first: bigint }).first <= last) {
            active.add((pending[next] as { producerId: string }).producerId);
            next++;
          }
        }
        if (batch.isControlBatch) {
          if (isAbortMarker(record)) active.delete(batch.producerId);
        } else if (batch.inTransaction && active.has(batch.producerId)) {
          aborted = true;
        }
      }
    }
    if (aborted) {
      record.isControlRecord = true;
      marked++;
    }
  }
  return marked;
}

interface FetchResponse {
  responses?: { topicName?: string; partitions?: FetchedPartition[] }[];
}

/** Applies {@link markAbortedRecords} to every partition of a fetch response. */
export function markAbortedInResponse(response: unknown): number {
  let marked = 0;
  const responses = (response as FetchResponse | undefined)?.responses;
  if (!Array.isArray(responses)) return 0;
  for (const topic of responses) {
    if (!Array.isArray(topic?.partitions)) continue;
    for (const partition of topic.partitions) marked += markAbortedRecords(partition);
  }
  return marked;
}

type BatchClass = new (
  topic: string,
  fetchedOffset: string,
  data: { partition: number; highWatermark: string; abortedTransactions: []; messages: unknown[] },
) => {
  messages: { offset: string }[];
  lastOffset(): string;
  isEmptyDueToFiltering(): boolean;
};

/**
 * Whether kafkajs's fetch path is the one this module was checked against:
 * the pinned version, the broker shape, and a Batch that drops flagged
 * records while counting their offsets. Checked once, lazily; never throws.
 */
export const kafkajsFetchPathUsable: () => true | string = pinnedKafkajsCheck<true>(
  "Sluice's read_committed filter",
  (require) => {
    const Broker = require("kafkajs/src/broker/index.js") as { prototype: { fetch?: unknown } };
    if (typeof Broker?.prototype?.fetch !== "function") {
      return "kafkajs's Broker has an unexpected shape";
    }
    const Batch = require("kafkajs/src/consumer/batch.js") as BatchClass;
    const ctx = { firstOffset: "5", lastOffsetDelta: 1, producerId: "1", inTransaction: true };
    const probe = (offset: string, isControlRecord: boolean) => ({
      offset,
      key: null,
      isControlRecord,
      batchContext: ctx,
    });
    const mixed = new Batch("t", "5", {
      partition: 0,
      highWatermark: "9",
      abortedTransactions: [],
      messages: [probe("5", false), probe("6", true)],
    });
    const onlyFlagged = new Batch("t", "5", {
      partition: 0,
      highWatermark: "9",
      abortedTransactions: [],
      messages: [probe("5", true), probe("6", true)],
    });
    if (
      mixed.messages.length !== 1 ||
      mixed.messages[0]?.offset !== "5" ||
      mixed.lastOffset() !== "6" ||
      onlyFlagged.messages.length !== 0 ||
      !onlyFlagged.isEmptyDueToFiltering() ||
      onlyFlagged.lastOffset() !== "6"
    ) {
      return "kafkajs's consumer Batch does not treat flagged records as expected";
    }
    return true;
  },
);

/** How a consumer made by {@link createReadCommittedConsumer} filters aborted records. */
export interface ReadCommittedInfo {
  /** `'sluice'` (this module) or `'kafkajs'` (fallback). */
  filter: "sluice" | "kafkajs";
  /** Why kafkajs filters, when it does. */
  reason: string | undefined;
  /** Fetch responses seen, and records this module dropped as aborted. */
  readonly counts: { fetches: number; abortedRecords: number };
  /** The consumer's own kafkajs cluster, when Sluice's filter is installed. */
  cluster?: object;
}

const infos = new WeakMap<Consumer, ReadCommittedInfo>();
let warned = false;

function warnOnce(reason: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `sluice: consumers use kafkajs's own read_committed filter (${reason}); records of transactions aborted out of order may be delivered`,
  );
}

type BrokerLike = { fetch: (args: unknown) => Promise<unknown> };

/**
 * A kafkajs consumer whose read_committed fetches drop every record of an
 * aborted transaction, whatever the order of the transactions. Falls back to
 * a plain `kafka.consumer(config)` (with a warning, once per process) when
 * kafkajs is not the pinned version or has an unexpected shape.
 *
 * @param kafka - the client
 * @param config - kafkajs consumer config
 * @param onBroker - also called once for each broker object of the
 *   consumer's own cluster, before use (only with Sluice's filter)
 * @returns the consumer; {@link readCommittedInfo} tells which filter it uses
 */
export function createReadCommittedConsumer(
  kafka: Kafka,
  config: ConsumerConfig,
  onBroker?: (broker: object) => void,
): Consumer {
  const counts = { fetches: 0, abortedRecords: 0 };
  const plain = (reason: string, consumer?: Consumer): Consumer => {
    const c = consumer ?? kafka.consumer(config);
    if (!config.readUncommitted) warnOnce(reason);
    infos.set(c, { filter: "kafkajs", reason, counts });
    return c;
  };
  if (config.readUncommitted) return plain("the consumer reads uncommitted records");
  const usable = kafkajsFetchPathUsable();
  if (usable !== true) return plain(usable);
  const hooked = onPrivateCluster(
    kafka,
    (child) => KafkaClass.prototype.consumer.call(child, config),
    (broker) => {
      const b = broker as BrokerLike;
      const original = b.fetch;
      if (typeof original !== "function") return;
      b.fetch = async function fetch(this: BrokerLike, args: unknown) {
        const response = await original.call(this, args);
        counts.fetches++;
        counts.abortedRecords += markAbortedInResponse(response);
        return response;
      };
      onBroker?.(broker);
    },
  );
  if (hooked.reason !== undefined) return plain(hooked.reason, hooked.made);
  const consumer = hooked.made;
  infos.set(consumer, { filter: "sluice", reason: undefined, counts, cluster: hooked.cluster });
  return consumer;
}

/**
 * How a consumer made by {@link createReadCommittedConsumer} filters aborted
 * records, or `undefined` for any other consumer.
 */
export function readCommittedInfo(consumer: Consumer): ReadCommittedInfo | undefined {
  return infos.get(consumer);
}
