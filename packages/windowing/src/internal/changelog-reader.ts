// Reads partitions of the changelog topic from their start to their current
// end, read_committed. kafkajs has no manual assignment, so a throw-away
// consumer group is used: its offsets are set before it joins (wanted
// partitions at their low watermark, all others at their end), and it is
// deleted afterwards. A process killed during a restore leaves its group
// behind; the next start of the job deletes such groups
// (deleteStaleRestoreGroups).
import { randomBytes } from "node:crypto";
import type { Admin, Kafka } from "kafkajs";
import { WindowingError } from "../windowing-error.js";
import { ChangelogFold } from "./changelog-codec.js";
import { createReadCommittedConsumer } from "./read-committed.js";

export async function readChangelog(args: {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  partitions: readonly number[];
  /** Where to start per partition (a local copy's changelog offset); else the low watermark. */
  from?: ReadonlyMap<number, bigint>;
  /** Folds pre-filled from a local copy. */
  folds?: ReadonlyMap<number, ChangelogFold>;
  timeoutMs: number;
  heartbeat?: () => Promise<void>;
}): Promise<Map<number, { fold: ChangelogFold; records: number; end?: bigint }>> {
  const { kafka, admin, topic } = args;
  const result = new Map<number, { fold: ChangelogFold; records: number; end?: bigint }>();
  for (const p of args.partitions) {
    result.set(p, { fold: args.folds?.get(p) ?? new ChangelogFold(), records: 0 });
  }
  const offsets = await admin.fetchTopicOffsets(topic);
  const want = new Map<number, bigint>(); // partition -> end offset (exclusive)
  const start = new Map<number, string>();
  for (const o of offsets) {
    const from = args.from?.get(o.partition);
    const begin = from !== undefined && from > BigInt(o.low) ? from : BigInt(o.low);
    if (args.partitions.includes(o.partition) && BigInt(o.high) > begin) {
      want.set(o.partition, BigInt(o.high));
      start.set(o.partition, begin.toString());
    }
  }
  for (const [p, end] of want) {
    const entry = result.get(p);
    if (entry) entry.end = end;
  }
  if (want.size === 0) return result;
  // The creation time in the name tells a stale group from one in use.
  const groupId = `${restoreGroupPrefix(topic)}${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  await admin.setOffsets({
    groupId,
    topic,
    partitions: offsets.map((o) => ({
      partition: o.partition,
      offset: start.get(o.partition) ?? o.high,
    })),
  });
  const consumer = createReadCommittedConsumer(kafka, {
    groupId,
    readUncommitted: false,
    maxBytesPerPartition: 8 * 1024 * 1024,
    maxWaitTimeInMs: 100,
    sessionTimeout: 30_000,
    retry: { retries: 5 },
  });
  const next = new Map<number, bigint>();
  let settle!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err === undefined ? resolve() : reject(err));
  });
  const check = () => {
    for (const [p, end] of want) if ((next.get(p) ?? 0n) < end) return;
    settle();
  };
  const timer = setTimeout(
    () =>
      settle(
        new WindowingError(
          "WINDOWING_RESTORE_FAILED",
          `restoring ${topic} partitions ${[...want.keys()].join(",")} did not finish within ${args.timeoutMs} ms`,
        ),
      ),
    args.timeoutMs,
  );
  const beat = args.heartbeat
    ? setInterval(() => void args.heartbeat?.().catch(() => {}), 2000)
    : undefined;
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const p = e.payload as { topic: string; partition: number; lastOffset: string | null };
    if (p.topic !== topic || !want.has(p.partition) || p.lastOffset === null) return;
    const last = BigInt(p.lastOffset) + 1n;
    if (last > (next.get(p.partition) ?? 0n)) next.set(p.partition, last);
    check();
  });
  consumer.on(consumer.events.CRASH, (e) => settle((e.payload as { error: Error }).error));
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const entry = result.get(batch.partition);
        const end = want.get(batch.partition);
        if (!entry || end === undefined) return;
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < (next.get(batch.partition) ?? 0n) || offset >= end || m.key === null)
            continue;
          entry.fold.apply(m.key, m.value);
          entry.records++;
          next.set(batch.partition, offset + 1n);
        }
      },
    });
    await done;
  } finally {
    clearTimeout(timer);
    if (beat) clearInterval(beat);
    await consumer.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
  }
  return result;
}

function restoreGroupPrefix(topic: string): string {
  return `${topic}-restore-`;
}

/** Restore groups younger than this are never deleted as stale (a restore may be using them). */
const STALE_RESTORE_GROUP_MS = 10 * 60_000;

/**
 * Deletes the restore groups of `topic` left behind by processes killed
 * during a restore: empty groups (no member) created more than 10 minutes
 * ago, and empty groups named the earlier way (no creation time). Deleting
 * a group a restore is about to join is harmless: its consumer then reads
 * the changelog from the start, which folds to the same state. Returns the
 * groups deleted; failures (ACLs, a busy coordinator) are left for the next
 * start.
 */
export async function deleteStaleRestoreGroups(
  admin: Admin,
  topic: string,
  now = Date.now(),
): Promise<string[]> {
  const prefix = restoreGroupPrefix(topic);
  const { groups } = await admin.listGroups();
  const candidates = groups
    .map((g) => g.groupId)
    .filter((id) => {
      if (!id.startsWith(prefix)) return false;
      const rest = id.slice(prefix.length);
      const cut = rest.indexOf("-");
      if (cut < 0) return /^[0-9a-f]{12}$/.test(rest);
      const created = Number.parseInt(rest.slice(0, cut), 36);
      return Number.isFinite(created) && now - created > STALE_RESTORE_GROUP_MS;
    });
  if (candidates.length === 0) return [];
  const described = await admin.describeGroups(candidates);
  const empty = described.groups.filter((g) => g.state === "Empty").map((g) => g.groupId);
  if (empty.length === 0) return [];
  try {
    await admin.deleteGroups(empty);
    return empty;
  } catch (err) {
    // Some deleted, some not (a member joined meanwhile): kafkajs lists the failures.
    const failed = (err as { groups?: { groupId: string }[] }).groups;
    if (!failed) throw err;
    const notDeleted = new Set(failed.map((g) => g.groupId));
    return empty.filter((id) => !notDeleted.has(id));
  }
}
