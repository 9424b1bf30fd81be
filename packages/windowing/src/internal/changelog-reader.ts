// Reads partitions of the changelog topic from their start to their current
// end, read_committed. kafkajs has no manual assignment, so a throw-away
// consumer group is used: its offsets are set before it joins (wanted
// partitions at their low watermark, all others at their end), and it is
// deleted afterwards.
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
  const groupId = `${topic}-restore-${randomBytes(6).toString("hex")}`;
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
