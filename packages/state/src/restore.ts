import { type Duration, parseDuration } from "@sluice/schema";
import type { Kafka } from "kafkajs";
import {
  type ChangelogRecord,
  partitionOffsets,
  readPartition,
} from "./internal/changelog-reader.js";
import { T_META } from "./internal/keys.js";
import { StateError } from "./state-error.js";
import {
  type CheckpointMetadata,
  kApplyChangelog,
  kDiscardChanges,
  kWriteRestoredCheckpoint,
  type StateStore,
} from "./state-store.js";

/**
 * Options of {@link restore}.
 *
 * @since 0.1.0
 */
export interface RestoreOptions {
  /** A kafkajs `Kafka` client. */
  kafka: Kafka;
  /** The compacted changelog topic, see `changelogTopicName`. */
  topic: string;
  /** Source partition to rebuild (= changelog partition). */
  partition: number;
  /** The open store to rebuild into. */
  store: StateStore<unknown> | StateStore<never>;
  /**
   * `"auto"` replays only the records after the local checkpoint's
   * `changelogOffset` when the local copy has one inside the topic's range,
   * and otherwise wipes the partition and replays everything; `"full"`
   * always wipes and replays everything.
   * @defaultValue "auto"
   */
  mode?: "auto" | "full";
  /** Give up after this long. @defaultValue "5m" */
  timeout?: Duration;
  /** Aborts the replay (the partition is then left partially restored: wipe it or restore again). */
  signal?: AbortSignal;
}

/**
 * What {@link restore} did.
 *
 * @since 0.1.0
 */
export interface RestoreResult {
  /** `"delta"`: only newer records replayed; `"full"`: wiped and replayed; `"none"`: already up to date. */
  mode: "delta" | "full" | "none";
  /** Changelog records replayed (checkpoint metadata records included). */
  records: number;
  /** First changelog offset read. */
  fromOffset: string;
  /** Changelog end offset the state now reflects. */
  toOffset: string;
  /** Wall time taken. */
  durationMs: number;
  /** The partition's checkpoint after the restore, if the changelog carried one. */
  checkpoint: CheckpointMetadata | undefined;
}

/**
 * Rebuilds one partition of a store from its compacted changelog topic on
 * the broker, so state can move between machines. When the local checkpoint
 * records a changelog offset (it does when the store has a changelog writer,
 * or the caller passed `changelogOffset`), only the records after it are
 * replayed; a missing, corrupt-and-discarded or too-old local copy is
 * replayed in full. Reads `read_committed`, so records of aborted
 * transactions are never applied: under exactly-once, initialise the
 * transactional producer (which aborts a crashed predecessor's transaction)
 * before restoring. Uncheckpointed changes of the partition are dropped.
 *
 * @param opts - see {@link RestoreOptions}
 * @returns what was replayed
 * @throws StateError `STATE_RESTORE_FAILED` (retryable) when the topic cannot be read or the replay times out; `STATE_CLOSED`
 * @example
 * ```ts
 * for (const partition of assigned) {
 *   const r = await restore({ kafka, topic: changelogTopicName("agg", "counts"), partition, store });
 *   log.info({ partition, mode: r.mode, records: r.records }, "state restored");
 * }
 * ```
 * @since 0.1.0
 */
export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const store = opts.store as StateStore<unknown>;
  if (
    typeof opts.topic !== "string" ||
    opts.topic === "" ||
    typeof opts.kafka?.admin !== "function"
  ) {
    throw new StateError(
      "STATE_INVALID_OPTIONS",
      "restore needs { kafka, topic, partition, store }",
    );
  }
  store.partition(opts.partition); // validates the partition, rejects when closed
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(opts.timeout ?? "5m", "timeout");
  } catch (err) {
    throw new StateError("STATE_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
  const admin = opts.kafka.admin();
  try {
    await admin.connect();
    const { target, all } = await partitionOffsets(admin, opts.topic, opts.partition);
    const local = await store.readCheckpoint(opts.partition);
    let from = target.low;
    let delta = false;
    if (opts.mode !== "full" && local?.changelogOffset !== undefined) {
      const c = BigInt(local.changelogOffset);
      if (c >= target.low && c <= target.high) {
        from = c;
        delta = true;
      }
    }
    await store[kDiscardChanges](opts.partition);
    if (!delta) await store.wipe(opts.partition);
    let records = 0;
    let lastMeta: { sourceOffset: string | number; streamTime: number } | undefined;
    if (from < target.high) {
      await readPartition({
        kafka: opts.kafka,
        admin,
        topic: opts.topic,
        partition: opts.partition,
        from,
        to: target.high,
        others: all,
        timeoutMs,
        signal: opts.signal,
        onRecords: async (recs: ChangelogRecord[]) => {
          for (const r of recs) {
            if (r.key[4] === T_META && r.value !== null) {
              lastMeta = JSON.parse(r.value.toString("utf8")) as typeof lastMeta;
            }
          }
          // a full replay starts empty, but later slices may change windows of earlier ones
          await store[kApplyChangelog](opts.partition, recs, delta || records > 0);
          records += recs.length;
        },
      });
    }
    // the cache may hold versions read during the replay: drop them
    await store[kDiscardChanges](opts.partition);
    let checkpoint: CheckpointMetadata | undefined;
    const base = lastMeta ?? (delta ? local : undefined);
    if (base !== undefined) {
      checkpoint = {
        sourceOffset: base.sourceOffset,
        streamTime: base.streamTime,
        changelogOffset: target.high.toString(),
        checkpointedAt: Date.now(),
      };
      await store[kWriteRestoredCheckpoint](opts.partition, checkpoint);
    }
    return {
      mode: !delta ? "full" : records === 0 ? "none" : "delta",
      records,
      fromOffset: from.toString(),
      toOffset: target.high.toString(),
      durationMs: Date.now() - started,
      checkpoint,
    };
  } catch (err) {
    if (StateError.isInstance(err)) throw err;
    throw new StateError(
      "STATE_RESTORE_FAILED",
      `restoring partition ${opts.partition} of store ${store.name} from ${opts.topic} failed: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
