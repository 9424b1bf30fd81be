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
// Version 3 is the first flexible version, written and read with
// flexible-request.ts.
import {
  type FlexibleEncoder,
  flexibleRequestBody,
  flexibleRequestInternals,
  flexibleResponseReader,
  sendFlexibleRequest,
} from "./flexible-request.js";
import { pinnedKafkajsCheck } from "./kafkajs-private-cluster.js";

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

/**
 * kafkajs's internals the fenced commit needs, or why they are unusable.
 * Loaded once, lazily; never throws.
 *
 * @internal
 */
export const groupFencingInternals = pinnedKafkajsCheck<{
  createErrorFromCode: (code: number) => Error;
}>("Sluice's fenced offset commit", (require) => {
  const flexible = flexibleRequestInternals();
  if (typeof flexible === "string") return flexible;
  const Broker = require("kafkajs/src/broker/index.js") as { prototype: object };
  const broker = Broker.prototype as Record<string, unknown>;
  if (typeof broker.txnOffsetCommit !== "function" || typeof broker.joinGroup !== "function") {
    return "kafkajs's Broker has an unexpected shape";
  }
  return flexible;
});

/** The request body, in kafkajs's Encoder (what its request framing takes). */
function requestBody(args: TxnOffsetCommitArgs, g: GroupGeneration): FlexibleEncoder {
  const e = flexibleRequestBody();
  e.writeUVarIntString(args.transactionalId).writeUVarIntString(args.groupId);
  e.writeInt64(args.producerId).writeInt16(args.producerEpoch);
  e.writeInt32(g.generationId).writeUVarIntString(g.memberId);
  e.writeUVarIntString(g.groupInstanceId).writeUVarInt(args.topics.length + 1);
  for (const t of args.topics) {
    e.writeUVarIntString(t.topic).writeUVarInt(t.partitions.length + 1);
    for (const p of t.partitions) {
      // committed_leader_epoch -1: unknown; then the partition's empty tagged fields
      e.writeInt32(p.partition).writeInt64(p.offset).writeInt32(-1);
      e.writeUVarIntString(p.metadata ?? null).writeUVarInt(0);
    }
    e.writeUVarInt(0);
  }
  return e.writeUVarInt(0);
}

/**
 * The body of a TxnOffsetCommit version 3 request, preceded by the empty
 * tagged fields that make kafkajs's request header version 1 a version 2.
 *
 * @throws ProducerError `PRODUCER_FENCING_UNAVAILABLE` when kafkajs's
 *   internals are unusable
 * @internal
 */
export function encodeTxnOffsetCommitV3(args: TxnOffsetCommitArgs, g: GroupGeneration): Buffer {
  return requestBody(args, g).buffer;
}

/**
 * Decodes a TxnOffsetCommit version 3 response (what follows the
 * correlation id: the response header's tagged fields, then the body).
 *
 * @throws RangeError on a truncated response
 * @internal
 */
export function decodeTxnOffsetCommitV3(buf: Buffer): TxnOffsetCommitV3Response {
  const r = flexibleResponseReader(buf, "TxnOffsetCommit");
  const throttleTime = r.int32();
  const topics: TxnOffsetCommitV3Response["topics"] = [];
  for (let t = r.arrayLength(); t > 0; t--) {
    const topic = r.string() ?? "";
    const partitions: { partition: number; errorCode: number }[] = [];
    for (let p = r.arrayLength(); p > 0; p--) {
      partitions.push({ partition: r.int32(), errorCode: r.int16() });
      r.skipTags();
    }
    r.skipTags();
    topics.push({ topic, partitions });
  }
  r.skipTags();
  return { throttleTime, topics };
}

type BrokerLike = Record<string, unknown>;

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
  if (typeof original !== "function") return;
  b.txnOffsetCommit = async function txnOffsetCommit(this: BrokerLike, args: TxnOffsetCommitArgs) {
    const g = generationFor(args.groupId);
    if (!g) return (original as (a: TxnOffsetCommitArgs) => Promise<unknown>).call(this, args);
    const data = await sendFlexibleRequest(this, {
      apiKey: TXN_OFFSET_COMMIT,
      apiVersion: VERSION,
      apiName: "TxnOffsetCommit",
      body: requestBody(args, g),
      decode: decodeTxnOffsetCommitV3,
      purpose: "fencing offset commits by group generation",
      since: "2.5",
    });
    for (const t of data.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== 0) throw internals.createErrorFromCode(p.errorCode);
      }
    }
    return data;
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
