// A consumer group's committed offsets, read only once they are stable (KIP-447).
//
// A transaction that commits a group's offsets (TxnOffsetCommit) leaves a
// pending offset commit at the group coordinator until its markers are
// written. A member that takes a partition over must not start from the
// group's offset while a transaction of the previous owner that commits that
// partition's offset is still open: it would read the older offset and
// process again what that transaction covers. OffsetFetch version 7 (Kafka
// 2.5) carries require_stable: the coordinator then answers
// UNSTABLE_OFFSET_COMMIT (88, retriable) for such a partition instead of the
// last stable offset, and the reader asks again until the transaction
// completes (it commits or aborts, by itself or at its timeout).
//
// kafkajs 2.2.4 sends OffsetFetch versions 1 to 4 only (admin.fetchOffsets),
// without require_stable. This module writes version 7 by hand with
// kafkajs's Encoder and sends it through the group coordinator's broker
// object of a kafkajs private cluster (flexible-request.ts). A broker or
// kafkajs that cannot do that is an error, never an unstable read.
//
// OffsetFetch version 7 (OffsetFetchRequest.json / OffsetFetchResponse.json):
//   request  => group_id topics require_stable TAG_BUFFER
//     group_id => COMPACT_STRING
//     topics => name partition_indexes TAG_BUFFER   (COMPACT_ARRAY, nullable: all topics)
//       name => COMPACT_STRING
//       partition_indexes => COMPACT_ARRAY(INT32)
//     require_stable => BOOLEAN
//   response => throttle_time_ms topics error_code TAG_BUFFER
//     throttle_time_ms => INT32
//     topics => name partitions TAG_BUFFER          (COMPACT_ARRAY)
//       name => COMPACT_STRING
//       partitions => partition_index committed_offset committed_leader_epoch metadata error_code TAG_BUFFER
//         partition_index => INT32
//         committed_offset => INT64                 (-1: none committed)
//         committed_leader_epoch => INT32
//         metadata => COMPACT_NULLABLE_STRING
//         error_code => INT16
//     error_code => INT16
import { setTimeout as sleep } from "node:timers/promises";
import { ProducerError } from "../producer-error.js";
import {
  flexibleInternalsOrThrow,
  flexibleRequestBody,
  flexibleResponseReader,
  sendFlexibleRequest,
} from "./flexible-request.js";

/**
 * The partitions of one topic whose committed offsets are asked.
 *
 * @internal
 */
export interface StableOffsetsTopic {
  topic: string;
  partitions: number[];
}

/**
 * One partition's committed offset: a decimal string, `"-1"` when the group
 * has none for it (as kafkajs's `admin.fetchOffsets` gives it).
 *
 * @internal
 */
export interface StableOffset {
  topic: string;
  partition: number;
  offset: string;
}

/**
 * Options of {@link fetchStableOffsets}.
 *
 * @internal
 */
export interface FetchStableOffsetsOptions {
  /**
   * How long to keep asking while a transaction holds a pending offset
   * commit for a partition. It must outlast the longest transaction timeout
   * of the producers committing the group's offsets (kafkajs's default:
   * 60 s), after which the coordinator aborts the transaction.
   *
   * @defaultValue 70_000
   */
  timeoutMs?: number;
  /** Stops the waiting between attempts (a request on the wire still completes). */
  signal?: AbortSignal;
}

/** A decoded OffsetFetch version 7 response. */
export interface OffsetFetchV7Response {
  throttleTime: number;
  topics: {
    topic: string;
    partitions: {
      partition: number;
      offset: string;
      leaderEpoch: number;
      metadata: string | null;
      errorCode: number;
    }[];
  }[];
  errorCode: number;
}

const OFFSET_FETCH = 9;
const VERSION = 7;
const DEFAULT_TIMEOUT_MS = 70_000;
const FIRST_DELAY_MS = 10;
const MAX_DELAY_MS = 500;
/** How many times a lost coordinator is looked up again before its error is thrown. */
const COORDINATOR_LOOKUPS = 10;

const UNSTABLE_OFFSET_COMMIT = 88;
/** COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR. */
const COORDINATOR_ERRORS = new Set([14, 15, 16]);
/** kafkajs errors after which the request may not have reached the coordinator. */
const CONNECTION_ERRORS = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
]);

/**
 * The body of an OffsetFetch version 7 request with require_stable set,
 * preceded by the empty tagged fields that make kafkajs's request header
 * version 1 a version 2.
 *
 * @throws ProducerError `PRODUCER_FENCING_UNAVAILABLE` when kafkajs's
 *   internals are unusable
 * @internal
 */
export function encodeOffsetFetchV7(groupId: string, topics: StableOffsetsTopic[]): Buffer {
  return requestBody(groupId, topics).buffer;
}

function requestBody(groupId: string, topics: StableOffsetsTopic[]) {
  // kafkajs's writeUVarIntArray keeps only the object items of an array
  // (not int32s): the compact arrays' lengths are written here
  const e = flexibleRequestBody()
    .writeUVarIntString(groupId)
    .writeUVarInt(topics.length + 1);
  for (const t of topics) {
    e.writeUVarIntString(t.topic).writeUVarInt(t.partitions.length + 1);
    for (const p of t.partitions) e.writeInt32(p);
    e.writeUVarInt(0);
  }
  // require_stable, then the body's empty tagged fields
  return e.writeBoolean(true).writeUVarInt(0);
}

/**
 * Decodes an OffsetFetch version 7 response (what follows the correlation
 * id: the response header's tagged fields, then the body).
 *
 * @throws RangeError on a truncated response
 * @internal
 */
export function decodeOffsetFetchV7(buf: Buffer): OffsetFetchV7Response {
  const r = flexibleResponseReader(buf, "OffsetFetch");
  const throttleTime = r.int32();
  const topics: OffsetFetchV7Response["topics"] = [];
  for (let t = r.arrayLength(); t > 0; t--) {
    const topic = r.string() ?? "";
    const partitions: OffsetFetchV7Response["topics"][number]["partitions"] = [];
    for (let p = r.arrayLength(); p > 0; p--) {
      partitions.push({
        partition: r.int32(),
        offset: r.int64(),
        leaderEpoch: r.int32(),
        metadata: r.string(),
        errorCode: r.int16(),
      });
      r.skipTags();
    }
    r.skipTags();
    topics.push({ topic, partitions });
  }
  const errorCode = r.int16();
  r.skipTags();
  return { throttleTime, topics, errorCode };
}

type ClusterLike = { findGroupCoordinator?: (q: { groupId: string }) => Promise<object> };

/**
 * Reads a consumer group's committed offsets once no open transaction holds
 * a pending offset commit for them (OffsetFetch version 7 with
 * require_stable, KIP-447): what a member that takes partitions over must
 * start from under exactly-once. While the group coordinator answers
 * UNSTABLE_OFFSET_COMMIT for a partition (or the whole group), it asks again
 * after 10, 20, 40 ... ms (at most 500 ms apart) until `timeoutMs`. A
 * coordinator that moved, is not available or is loading, and a connection
 * lost to it, make it look the coordinator up again (10 times at most).
 *
 * `cluster` is a kafkajs private cluster, as {@link onPrivateCluster} hands it
 * out, whose consumer or admin is connected (the request goes over that
 * cluster's own connection to the coordinator). The windowing runtime uses
 * its consumer's: `onPrivateCluster(kafka, (child) =>
 * Kafka.prototype.consumer.call(child, config), onBroker).cluster`, the
 * cluster `createReadCommittedConsumer` hooks. Any other caller can make an
 * admin the same way (see the example) and disconnect it after use.
 *
 * @param cluster - a connected kafkajs private cluster (`onPrivateCluster(...).cluster`)
 * @param groupId - the consumer group
 * @param topics - the topics and partitions whose offsets are asked
 * @param options - timeout and abort signal
 * @returns one entry per partition the coordinator answered for (every one
 *   asked), in the coordinator's order; `offset` is `"-1"` where the group
 *   has no committed offset
 * @throws ProducerError `PRODUCER_OFFSETS_UNSTABLE` (retryable) when a
 *   pending offset commit is still there after `timeoutMs`;
 *   `PRODUCER_FENCING_UNAVAILABLE` when the coordinator does not support
 *   OffsetFetch version 7 (Kafka older than 2.5) or the installed kafkajs is
 *   not 2.2.4 (never an unstable read instead); `PRODUCER_INVALID_OPTIONS`
 *   for a bad argument. kafkajs's protocol error for any other error code
 *   (e.g. `GROUP_AUTHORIZATION_FAILED`), and for a coordinator still lost
 *   after 10 lookups; kafkajs's lookup and connection errors; the signal's
 *   reason when aborted.
 * @example
 * ```ts
 * const { made: admin, cluster, reason } = onPrivateCluster(
 *   kafka,
 *   (child) => Kafka.prototype.admin.call(child),
 *   () => {},
 * );
 * if (reason !== undefined) throw new Error(reason);
 * await admin.connect();
 * try {
 *   const offsets = await fetchStableOffsets(cluster, "my-group", [
 *     { topic: "events", partitions: [0, 1] },
 *   ]);
 * } finally {
 *   await admin.disconnect();
 * }
 * ```
 * @internal
 */
export async function fetchStableOffsets(
  cluster: object,
  groupId: string,
  topics: StableOffsetsTopic[],
  options: FetchStableOffsetsOptions = {},
): Promise<StableOffset[]> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, signal } = options;
  validate(cluster, groupId, topics, timeoutMs);
  const { createErrorFromCode } = flexibleInternalsOrThrow();
  signal?.throwIfAborted();
  const asked = topics.filter((t) => t.partitions.length > 0);
  if (asked.length === 0) return [];
  const c = cluster as Required<ClusterLike>;
  const request = {
    apiKey: OFFSET_FETCH,
    apiVersion: VERSION,
    apiName: "OffsetFetch",
    body: requestBody(groupId, asked),
    decode: decodeOffsetFetchV7,
    purpose: "a stable offset fetch (require_stable)",
    since: "2.5",
  };
  const deadline = Date.now() + timeoutMs;
  let delay = FIRST_DELAY_MS;
  let lookups = 0;
  let coordinator: object | undefined;
  for (;;) {
    try {
      coordinator ??= await c.findGroupCoordinator({ groupId });
      const response = await sendFlexibleRequest(coordinator, request);
      const codes = [
        response.errorCode,
        ...response.topics.flatMap((t) => t.partitions.map((p) => p.errorCode)),
      ];
      const fatal = codes.find(
        (code) => code !== 0 && code !== UNSTABLE_OFFSET_COMMIT && !COORDINATOR_ERRORS.has(code),
      );
      if (fatal !== undefined) throw createErrorFromCode(fatal);
      const lost = codes.find((code) => COORDINATOR_ERRORS.has(code));
      if (lost !== undefined) throw createErrorFromCode(lost);
      if (!codes.includes(UNSTABLE_OFFSET_COMMIT)) {
        return response.topics.flatMap((t) =>
          t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })),
        );
      }
      if (Date.now() >= deadline) {
        throw new ProducerError(
          "PRODUCER_OFFSETS_UNSTABLE",
          `group ${JSON.stringify(groupId)} still has a pending transactional offset commit for ${unstable(response)} after ${timeoutMs} ms: the transaction committing it is still open; retry once it ends (a transaction is aborted at its timeout), or raise timeoutMs above the producers' transaction timeout`,
          { retryable: true, cause: createErrorFromCode(UNSTABLE_OFFSET_COMMIT) },
        );
      }
    } catch (err) {
      if (!coordinatorLost(err) || ++lookups > COORDINATOR_LOOKUPS || Date.now() >= deadline) {
        throw err;
      }
      coordinator = undefined;
    }
    const wait = Math.max(0, Math.min(delay, deadline - Date.now()));
    await sleep(wait, undefined, { signal }).catch((err: unknown) => {
      signal?.throwIfAborted();
      throw err;
    });
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}

/** Whether `err` says the coordinator moved, is unavailable or was not reached. */
function coordinatorLost(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; type?: unknown } | null;
  if (typeof e?.type === "string" && typeof e.code === "number") {
    return COORDINATOR_ERRORS.has(e.code);
  }
  return typeof e?.name === "string" && CONNECTION_ERRORS.has(e.name);
}

/** The partitions of a response still unstable, for a message (`events-0, events-3`). */
function unstable(response: OffsetFetchV7Response): string {
  const names = response.topics.flatMap((t) =>
    t.partitions
      .filter((p) => p.errorCode === UNSTABLE_OFFSET_COMMIT)
      .map((p) => `${t.topic}-${p.partition}`),
  );
  return names.length > 0 ? names.join(", ") : "the group";
}

function validate(
  cluster: object,
  groupId: string,
  topics: StableOffsetsTopic[],
  timeoutMs: number,
): void {
  const invalid = (message: string) => new ProducerError("PRODUCER_INVALID_OPTIONS", message);
  if (typeof (cluster as ClusterLike | null)?.findGroupCoordinator !== "function") {
    throw invalid(
      "cluster is not a kafkajs cluster (no findGroupCoordinator): pass onPrivateCluster(...).cluster",
    );
  }
  if (typeof groupId !== "string" || groupId.length === 0) {
    throw invalid(`groupId must be a non-empty string, got ${JSON.stringify(groupId)}`);
  }
  if (!Array.isArray(topics)) throw invalid("topics must be an array of { topic, partitions }");
  for (const t of topics) {
    if (typeof t?.topic !== "string" || t.topic.length === 0 || !Array.isArray(t.partitions)) {
      throw invalid(
        `each topic must be { topic: non-empty string, partitions: number[] }, got ${JSON.stringify(t)}`,
      );
    }
    const bad = t.partitions.find((p) => !Number.isInteger(p) || p < 0 || p > 0x7fffffff);
    if (bad !== undefined) {
      throw invalid(
        `partition ${JSON.stringify(bad)} of topic ${t.topic} is not a partition index`,
      );
    }
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalid(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  }
}
