// Offset commits fenced by the consumer group's generation (KIP-447).
//
// A transactional producer that commits a consumer group's offsets in its
// transactions (consume-transform-produce) must not let a member that lost
// its partitions in a rebalance (a zombie) commit for them. With one
// transactional id per input partition, the new owner's InitProducerId
// fences the old one. With one transactional id for all of a member's
// partitions, the fence is the group itself: TxnOffsetCommit version 3
// carries the member's group generation and member id, and the group
// coordinator refuses a stale one (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID), so the transaction must abort.
//
// kafkajs 2.2.4 sends TxnOffsetCommit versions 0 and 1 only and keeps a
// consumer's generation to itself. This module:
// - reports the generation from a consumer's JoinGroup answers
//   (`recordGroupGenerations`, a hook for the consumer's own brokers);
// - sends TxnOffsetCommit version 3 in place of kafkajs's request when the
//   producer was given a generation for that group
//   (`fenceOffsetCommits`, a hook for the producer's own brokers).
// Version 3 is the first flexible version: its request header has tagged
// fields after kafkajs's header version 1 (one empty-tags byte opens the
// body here) and its response header has them after the correlation id
// (skipped here before the body).
import { ProducerError } from "../producer-error.js";
import { pinnedKafkajsCheck, symbolNamed } from "./kafkajs-private-cluster.js";

/**
 * A consumer group member's generation, as its last JoinGroup gave it.
 *
 * @internal
 */
export interface GroupGeneration {
  groupId: string;
  generationId: number;
  memberId: string;
  /** Static membership id; null for dynamic members. */
  groupInstanceId: string | null;
}

/** kafkajs's arguments to `broker.txnOffsetCommit`. */
export interface TxnOffsetCommitArgs {
  transactionalId: string;
  groupId: string;
  producerId: number | string;
  producerEpoch: number;
  topics: {
    topic: string;
    partitions: { partition: number; offset: string; metadata?: string | null }[];
  }[];
}

/** A decoded TxnOffsetCommit version 3 response. */
export interface TxnOffsetCommitV3Response {
  throttleTime: number;
  topics: { topic: string; partitions: { partition: number; errorCode: number }[] }[];
}

const TXN_OFFSET_COMMIT = 28;
const VERSION = 3;

interface Internals {
  createErrorFromCode: (code: number) => Error;
}

/**
 * kafkajs's internals the fenced commit needs, or why they are unusable.
 * Loaded once, lazily; never throws.
 *
 * @internal
 */
export const groupFencingInternals = pinnedKafkajsCheck<Internals>(
  "Sluice's fenced offset commit",
  (require) => {
    const { createErrorFromCode } = require("kafkajs/src/protocol/error.js") as Partial<Internals>;
    const Broker = require("kafkajs/src/broker/index.js") as { prototype: object };
    const broker = Broker.prototype as Record<string, unknown>;
    if (typeof createErrorFromCode !== "function") {
      return "kafkajs's protocol errors have an unexpected shape";
    }
    if (typeof broker.txnOffsetCommit !== "function" || typeof broker.joinGroup !== "function") {
      return "kafkajs's Broker has an unexpected shape";
    }
    if (!symbolNamed(broker, "private:Broker:sendRequest")) {
      return "kafkajs's Broker has no private sendRequest";
    }
    return { createErrorFromCode };
  },
);

function uvarint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function compactString(s: string | null | undefined): Buffer {
  if (s === null || s === undefined) return uvarint(0);
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([uvarint(b.length + 1), b]);
}

function int(bytes: 2 | 4 | 8, v: number | string | bigint): Buffer {
  const b = Buffer.alloc(bytes);
  if (bytes === 2) b.writeInt16BE(Number(v));
  else if (bytes === 4) b.writeInt32BE(Number(v));
  else b.writeBigInt64BE(BigInt(v));
  return b;
}

const NO_TAGS = uvarint(0);

/**
 * The body of a TxnOffsetCommit version 3 request, preceded by the empty
 * tagged fields that make kafkajs's request header version 1 a version 2.
 *
 * @internal
 */
export function encodeTxnOffsetCommitV3(args: TxnOffsetCommitArgs, g: GroupGeneration): Buffer {
  const parts: Buffer[] = [
    NO_TAGS,
    compactString(args.transactionalId),
    compactString(args.groupId),
    int(8, args.producerId),
    int(2, args.producerEpoch),
    int(4, g.generationId),
    compactString(g.memberId),
    compactString(g.groupInstanceId),
    uvarint(args.topics.length + 1),
  ];
  for (const t of args.topics) {
    parts.push(compactString(t.topic), uvarint(t.partitions.length + 1));
    for (const p of t.partitions) {
      // committed_leader_epoch -1: unknown
      parts.push(int(4, p.partition), int(8, p.offset), int(4, -1));
      parts.push(compactString(p.metadata ?? null), NO_TAGS);
    }
    parts.push(NO_TAGS);
  }
  parts.push(NO_TAGS);
  return Buffer.concat(parts);
}

/** Reads a flexible-version body; throws on truncated input. */
class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  uvarint(): number {
    let result = 0;
    for (let shift = 0; shift <= 28; shift += 7) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
    }
    throw new RangeError("TxnOffsetCommit response: varint too long");
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  compactString(): string {
    const n = this.uvarint() - 1;
    if (n < 0) return "";
    this.need(n);
    const s = this.buf.toString("utf8", this.offset, this.offset + n);
    this.offset += n;
    return s;
  }
  skipTags(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      const size = this.uvarint();
      this.need(size);
      this.offset += size;
    }
  }
  private byte(): number {
    this.need(1);
    return this.buf[this.offset++] as number;
  }
  private need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new RangeError("TxnOffsetCommit response: truncated");
    }
  }
}

/**
 * Decodes a TxnOffsetCommit version 3 response (what follows the
 * correlation id: the response header's tagged fields, then the body).
 *
 * @internal
 */
export function decodeTxnOffsetCommitV3(buf: Buffer): TxnOffsetCommitV3Response {
  const r = new Reader(buf);
  r.skipTags();
  const throttleTime = r.int32();
  const topics: TxnOffsetCommitV3Response["topics"] = [];
  const topicCount = r.uvarint() - 1;
  for (let t = 0; t < topicCount; t++) {
    const topic = r.compactString();
    const partitions: { partition: number; errorCode: number }[] = [];
    const partitionCount = r.uvarint() - 1;
    for (let p = 0; p < partitionCount; p++) {
      partitions.push({ partition: r.int32(), errorCode: r.int16() });
      r.skipTags();
    }
    r.skipTags();
    topics.push({ topic, partitions });
  }
  r.skipTags();
  return { throttleTime, topics };
}

type BrokerLike = Record<string | symbol, unknown> & {
  versions?: Record<number, { minVersion: number; maxVersion: number }> | null;
};

/**
 * Hooks one broker object of a transactional producer's own cluster: its
 * `txnOffsetCommit` sends version 3 with the generation `generationFor`
 * gives for the request's group, and kafkajs's own request when it gives
 * none. A broker too old for version 3 refuses the commit (an error, never
 * an unfenced commit).
 *
 * @param broker - a kafkajs broker object of the producer's cluster
 * @param generationFor - the generation to fence this group's commit with
 * @internal
 */
export function fenceOffsetCommits(
  broker: object,
  generationFor: (groupId: string) => GroupGeneration | undefined,
): void {
  const internals = groupFencingInternals();
  if (typeof internals === "string") return;
  const b = broker as BrokerLike;
  const original = b.txnOffsetCommit;
  const send = symbolNamed(Object.getPrototypeOf(b) as object, "private:Broker:sendRequest");
  if (typeof original !== "function" || !send) return;
  b.txnOffsetCommit = async function txnOffsetCommit(this: BrokerLike, args: TxnOffsetCommitArgs) {
    const g = generationFor(args.groupId);
    if (!g) return (original as (a: TxnOffsetCommitArgs) => Promise<unknown>).call(this, args);
    const supported = this.versions?.[TXN_OFFSET_COMMIT]?.maxVersion ?? -1;
    if (supported < VERSION) {
      throw new ProducerError(
        "PRODUCER_FENCING_UNAVAILABLE",
        `the broker supports TxnOffsetCommit up to version ${supported}; fencing offset commits by group generation needs version ${VERSION} (Kafka 2.5 or later)`,
      );
    }
    const body = encodeTxnOffsetCommitV3(args, g);
    const request = {
      apiKey: TXN_OFFSET_COMMIT,
      apiVersion: VERSION,
      apiName: "TxnOffsetCommit",
      // what kafkajs's request framing reads from an Encoder
      encode: async () => ({
        buf: body,
        buffer: body,
        offset: body.length,
        size: () => body.length,
      }),
    };
    const response = {
      decode: async (raw: Buffer) => decodeTxnOffsetCommitV3(raw),
      parse: async (data: TxnOffsetCommitV3Response) => {
        for (const t of data.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== 0) throw internals.createErrorFromCode(p.errorCode);
          }
        }
        return data;
      },
    };
    return (this[send] as (r: unknown) => Promise<unknown>).call(this, { request, response });
  };
}

/**
 * Hooks one broker object of a consumer's own cluster: each JoinGroup answer
 * it gets reports the member's new generation to `onGeneration`.
 *
 * @param broker - a kafkajs broker object of the consumer's cluster
 * @param onGeneration - called with every generation joined
 * @internal
 */
export function recordGroupGenerations(
  broker: object,
  onGeneration: (g: GroupGeneration) => void,
): void {
  const b = broker as BrokerLike;
  const original = b.joinGroup;
  if (typeof original !== "function") return;
  b.joinGroup = async function joinGroup(
    this: BrokerLike,
    args: { groupId: string; groupInstanceId?: string | null },
  ) {
    const answer = (await (original as (a: unknown) => Promise<unknown>).call(this, args)) as {
      generationId?: unknown;
      memberId?: unknown;
    };
    if (typeof answer?.generationId === "number" && typeof answer.memberId === "string") {
      onGeneration({
        groupId: args.groupId,
        generationId: answer.generationId,
        memberId: answer.memberId,
        groupInstanceId: args.groupInstanceId ?? null,
      });
    }
    return answer;
  };
}
