// The package's Kafka adapter for reading: replays one partition of a topic
// between two offsets with kafkajs. kafkajs has no manual assignment, so a
// throw-away consumer group is used: it seeks the wanted partition to `from`
// as soon as it runs (records before `from` that an earlier fetch may return
// are skipped), pauses every other partition, reads read_committed, and is
// deleted afterwards.
import { randomBytes } from "node:crypto";
import type { Admin, Kafka } from "kafkajs";

export interface PartitionOffsets {
  low: bigint;
  high: bigint;
}

/** A changelog record as kafkajs hands it over (key is never null here). */
export interface ChangelogRecord {
  key: Buffer;
  value: Buffer | null;
}

export async function partitionOffsets(
  admin: Admin,
  topic: string,
  partition: number,
): Promise<{ target: PartitionOffsets; all: Array<{ partition: number; high: string }> }> {
  // fail fast on a missing topic (kafkajs would retry for seconds)
  if (!(await admin.listTopics()).includes(topic)) throw new Error(`topic ${topic} does not exist`);
  const offsets = await admin.fetchTopicOffsets(topic);
  const o = offsets.find((x) => x.partition === partition);
  if (o === undefined) {
    throw new Error(`topic ${topic} has no partition ${partition} (it has ${offsets.length})`);
  }
  return {
    target: { low: BigInt(o.low), high: BigInt(o.high) },
    all: offsets.map((x) => ({ partition: x.partition, high: x.high })),
  };
}

/**
 * Reads records of `partition` with offsets in [from, to), in order, handing
 * each fetched slice to `onRecords`. Resolves once offset `to - 1` has been
 * consumed (control records included).
 */
export async function readPartition(args: {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  partition: number;
  from: bigint;
  to: bigint;
  others: Array<{ partition: number; high: string }>;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  onRecords: (records: ChangelogRecord[]) => Promise<void>;
}): Promise<void> {
  const { kafka, admin, topic, partition, from, to } = args;
  const groupId = `sluice-state-restore-${topic}-${partition}-${randomBytes(6).toString("hex")}`;
  const consumer = kafka.consumer({
    groupId,
    readUncommitted: false,
    // large fetches: fewer round trips and bigger LevelDB batches per slice
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 32 * 1024 * 1024,
    maxWaitTimeInMs: 200,
    sessionTimeout: 30_000,
    retry: { retries: 5 },
  });
  let next = from;
  let applying: Promise<void> = Promise.resolve();
  let settle!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err === undefined ? resolve() : reject(err));
  });
  const timer = setTimeout(
    () =>
      settle(
        new Error(
          `replay of ${topic}[${partition}] did not reach offset ${to} within ${args.timeoutMs} ms (at ${next})`,
        ),
      ),
    args.timeoutMs,
  );
  const onAbort = () => settle(new Error("restore aborted"));
  args.signal?.addEventListener("abort", onAbort, { once: true });
  if (args.signal?.aborted) onAbort();
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const p = e.payload as { topic: string; partition: number; lastOffset: string | null };
    if (p.topic !== topic || p.partition !== partition || p.lastOffset === null) return;
    const last = BigInt(p.lastOffset);
    if (last + 1n > next) next = last + 1n;
    if (next >= to) settle();
  });
  consumer.on(consumer.events.CRASH, (e) => settle((e.payload as { error: Error }).error));
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, heartbeat }) => {
        if (batch.partition !== partition) return;
        const messages = batch.messages;
        if (messages.length === 0) return;
        let records = messages as ChangelogRecord[];
        let lastOffset = BigInt(messages[messages.length - 1]!.offset);
        // a message before `next` was already applied (refetch); from `to` on, not ours to
        // apply; changelog records always have a key. Checked per message only at the edges.
        if (
          BigInt(messages[0]!.offset) < next ||
          lastOffset >= to ||
          messages.some((m) => m.key === null)
        ) {
          records = [];
          for (const m of messages) {
            const offset = BigInt(m.offset);
            if (offset < next || offset >= to || m.key === null) continue;
            records.push(m as ChangelogRecord);
            lastOffset = offset;
          }
        }
        if (records.length > 0) {
          next = lastOffset + 1n;
          // one slice is written while kafkajs fetches the next
          await applying;
          applying = args.onRecords(records);
          applying.catch(settle);
        }
        await heartbeat();
      },
    });
    consumer.seek({ topic, partition, offset: from.toString() });
    const others = args.others.map((o) => o.partition).filter((n) => n !== partition);
    if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
    await done;
    await applying;
  } finally {
    clearTimeout(timer);
    args.signal?.removeEventListener("abort", onAbort);
    await consumer.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
  }
}
