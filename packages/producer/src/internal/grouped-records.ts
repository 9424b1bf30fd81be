// One kafkajs message per partition, carrying that partition's records.
//
// kafkajs 2.2.4 groups a request's messages by partition by copying the
// partition's list for every message (`groupMessagesPerPartition`), so a
// request costs time quadratic in its records per partition. Sluice's
// producer has already chosen every record's partition, so it hands kafkajs
// one `PartitionRecords` per partition instead; the Produce hook in
// `kafkajs-fast-path.ts` puts the records back in its place before the
// request is encoded.
//
// kafkajs's idempotent sequence numbers then count messages it saw — one
// per `PartitionRecords` — not records, while the broker expects a batch's
// first sequence to be the number of records of that partition written
// before it (by this producer id and epoch). `SequenceTranslator` maps the
// one to the other, per partition, following kafkajs's own bookkeeping: a
// sequence is taken when a request is sent, given back when the request
// fails (the retry reuses it), and restarts at 0 with a new producer id or
// epoch.
import type { MessageLike, ProduceArgs } from "./record-batch.js";

/** Stands in for record bytes kafkajs must never encode (its encoder throws on it). */
const NOT_RECORD_BYTES: object = Object.freeze({});

/** The records of one partition, passed to kafkajs as one message. */
export class PartitionRecords {
  /** Defined, as kafkajs requires of a message's value; not bytes, so kafkajs cannot write it. */
  readonly value: object = NOT_RECORD_BYTES;
  constructor(
    /** Read by the producer's partitioner. */
    readonly partition: number,
    readonly records: readonly MessageLike[],
  ) {}
}

/** Largest sequence number; the next one is 0 (as the broker counts). */
const INT32_MAX = 2 ** 31 - 1;

/** `sequence + increment`, wrapping after INT32_MAX to 0 as the broker and the Java client do. */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1;
  return sequence + increment;
}

/** What kafkajs's eosManager does with its own counter (it restarts at 0 when it reaches INT32_MAX). */
function kafkajsNext(sequence: number, increment: number): number {
  const next = sequence + increment;
  return next >= INT32_MAX ? 0 : next;
}

interface PartitionSequence {
  /** kafkajs's sequence of the last request sent, and the record sequence it stood for. */
  lastGiven: number;
  lastRecords: number;
  /** kafkajs's sequence of the next request, and the record sequence it will stand for. */
  nextGiven: number;
  nextRecords: number;
}

/** Thrown when kafkajs hands a sequence the translator cannot place (never expected). */
export class SequenceMismatch extends Error {
  override name = "SequenceMismatch";
}

/**
 * Maps kafkajs's per-partition sequence numbers (one per message it saw) to
 * record sequence numbers, for one producer.
 *
 * kafkajs (idempotent) has at most one request in flight per broker, so per
 * partition a request either follows the last one (`nextGiven`) or, after a
 * failure gave its sequence back, repeats it (`lastGiven`).
 */
export class SequenceTranslator {
  private producer = "";
  private readonly partitions = new Map<string, PartitionSequence[]>();

  /**
   * The record sequence for a partition's batch in a request being sent.
   *
   * @param producerId - kafkajs's producer id (-1 when not idempotent: sequences are unused)
   * @param producerEpoch - its epoch
   * @param given - the `firstSequence` kafkajs gave the batch
   * @param messages - how many messages kafkajs counted for it
   * @param records - how many records the batch holds
   * @throws SequenceMismatch when `given` is neither the next sequence nor a retry of the last
   */
  translate(
    producerId: unknown,
    producerEpoch: number | undefined,
    topic: string,
    partition: number,
    given: number,
    messages: number,
    records: number,
  ): number {
    const id = String(producerId ?? -1);
    if (id === "-1") return given;
    const identity = `${id}/${producerEpoch ?? 0}`;
    if (identity !== this.producer) {
      // kafkajs starts every partition at 0 again with a new id or epoch
      this.producer = identity;
      this.partitions.clear();
    }
    let byPartition = this.partitions.get(topic);
    if (!byPartition) {
      byPartition = [];
      this.partitions.set(topic, byPartition);
    }
    let s = byPartition[partition];
    if (!s) {
      s = { lastGiven: -1, lastRecords: -1, nextGiven: 0, nextRecords: 0 };
      byPartition[partition] = s;
    }
    let first: number;
    if (given === s.nextGiven) first = s.nextRecords;
    else if (given === s.lastGiven) first = s.lastRecords;
    else {
      throw new SequenceMismatch(
        `kafkajs gave sequence ${given} to ${topic}/${partition}; expected ${s.nextGiven} (next) or ${s.lastGiven} (retry)`,
      );
    }
    s.lastGiven = given;
    s.lastRecords = first;
    s.nextGiven = kafkajsNext(given, messages);
    s.nextRecords = incrementSequence(first, records);
    return first;
  }
}

/** kafkajs's Produce arguments as the Produce hook receives them: a message may be a `PartitionRecords`. */
export interface GroupedProduceArgs extends Omit<ProduceArgs, "topicData"> {
  topicData: ReadonlyArray<{
    topic: string;
    partitions: ReadonlyArray<{
      partition: number;
      firstSequence?: number;
      messages: ReadonlyArray<MessageLike | PartitionRecords>;
    }>;
  }>;
}

/**
 * kafkajs's Produce arguments with every `PartitionRecords` replaced by its
 * records and, when `sequences` is given, every first sequence translated to
 * records. The arguments are returned unchanged when `sequences` is not given
 * and no partition holds a `PartitionRecords`.
 */
export function expandProduceArgs(
  args: GroupedProduceArgs,
  sequences: SequenceTranslator | undefined,
): ProduceArgs {
  let changed = sequences !== undefined;
  if (!changed) {
    for (const t of args.topicData) {
      for (const p of t.partitions) {
        for (const m of p.messages) if (m instanceof PartitionRecords) changed = true;
      }
    }
    // no PartitionRecords anywhere: these are plain ProduceArgs
    if (!changed) return args as ProduceArgs;
  }
  return {
    ...args,
    topicData: args.topicData.map((t) => ({
      ...t,
      partitions: t.partitions.map((p) => {
        const records = recordsOf(p.messages);
        const given = p.firstSequence ?? 0;
        const firstSequence = sequences
          ? sequences.translate(
              args.producerId,
              args.producerEpoch,
              t.topic,
              p.partition,
              given,
              p.messages.length,
              records.length,
            )
          : given;
        return { ...p, firstSequence, messages: records };
      }),
    })),
  };
}

function recordsOf(
  messages: ReadonlyArray<MessageLike | PartitionRecords>,
): readonly MessageLike[] {
  if (messages.length === 1 && messages[0] instanceof PartitionRecords) return messages[0].records;
  let grouped = false;
  for (const m of messages) if (m instanceof PartitionRecords) grouped = true;
  if (!grouped) return messages as readonly MessageLike[];
  const out: MessageLike[] = [];
  for (const m of messages) {
    if (m instanceof PartitionRecords) for (const r of m.records) out.push(r);
    else out.push(m);
  }
  return out;
}

/**
 * Groups messages that carry their partition into one `PartitionRecords`
 * per partition, in first-seen order of the partitions, each keeping its
 * messages' order. Linear in the messages.
 */
export function groupByPartition<M extends MessageLike & { partition: number }>(
  messages: readonly M[],
): PartitionRecords[] {
  const lists: M[][] = [];
  const order: number[] = [];
  for (const m of messages) {
    let list = lists[m.partition];
    if (!list) {
      list = [];
      lists[m.partition] = list;
      order.push(m.partition);
    }
    list.push(m);
  }
  return order.map((p) => new PartitionRecords(p, lists[p]!));
}
