import { randomBytes } from "node:crypto";
import type { Admin, Kafka } from "kafkajs";

/** How far one consumer group is behind, per topic. */
export interface GroupLag {
  groupId: string;
  /** Sum over partitions of high watermark − committed offset, per topic. */
  lagByTopic: Record<string, number>;
  /** Largest lag of a single partition, per topic. */
  maxPartitionLag: Record<string, number>;
}

/**
 * Lag of a consumer group on every topic it has committed offsets for
 * (the source topic and, for re-keyed jobs, their repartition topic), plus
 * `topics` even when nothing was committed yet.
 *
 * @param admin - a connected kafkajs admin
 * @param groupId - the consumer group (a job's application id)
 * @param topics - topics that must be counted even without commits
 * @returns the lag per topic
 */
export async function groupLag(admin: Admin, groupId: string, topics: string[]): Promise<GroupLag> {
  const committed = await admin.fetchOffsets({ groupId });
  const names = new Set([...topics, ...committed.map((t) => t.topic)]);
  const lag: GroupLag = { groupId, lagByTopic: {}, maxPartitionLag: {} };
  for (const topic of names) {
    const ends = await admin.fetchTopicOffsets(topic).catch(() => []);
    const mine = committed.find((t) => t.topic === topic)?.partitions ?? [];
    let total = 0;
    let max = 0;
    for (const e of ends) {
      const c = mine.find((p) => p.partition === e.partition)?.offset ?? "-1";
      const low = Number(e.low);
      const done = Number(c) < 0 ? low : Number(c);
      const l = Math.max(0, Number(e.high) - done);
      total += l;
      max = Math.max(max, l);
    }
    lag.lagByTopic[topic] = total;
    lag.maxPartitionLag[topic] = max;
  }
  return lag;
}

/**
 * Waits until every group has consumed and committed everything: lag 0 on
 * `exactTopics` (written without transactions, such as the source topic),
 * every group Stable (not rebalancing) with members, and every lag unchanged
 * for `stablePolls` polls in a row (default 5). The last rule
 * covers topics written in transactions (repartition topics), whose tail
 * holds commit markers that occupy offsets but are never consumed: their lag
 * settles at a small constant instead of 0.
 *
 * @param admin - a connected kafkajs admin
 * @param groups - consumer groups to watch
 * @param exactTopics - topics without transaction markers (the source topic)
 * @param opts - timeout, poll interval, polls that must agree, progress callback
 * @returns the final lags
 * @throws Error when the timeout passes first, with the last lags
 */
export async function waitForCatchUp(
  admin: Admin,
  groups: string[],
  exactTopics: string[],
  opts: {
    timeoutMs: number;
    pollMs?: number;
    stablePolls?: number;
    onPoll?: (lags: GroupLag[]) => void;
    /**
     * With a client, a stable lag on any other topic (a repartition topic,
     * written in transactions) counts as done only when no record is left to
     * read after the group's committed offsets: a consumer that stalls (a
     * restarted instance still restoring, a starved process) keeps its lag
     * unchanged too, and without this check would pass for finished.
     */
    kafka?: Kafka;
  },
): Promise<GroupLag[]> {
  const deadline = Date.now() + opts.timeoutMs;
  const needed = opts.stablePolls ?? 5;
  let previous = "";
  let stable = 0;
  let lags: GroupLag[] = [];
  while (Date.now() < deadline) {
    lags = await Promise.all(groups.map((g) => groupLag(admin, g, exactTopics)));
    opts.onPoll?.(lags);
    // A group in the middle of a rebalance commits nothing: its lag looks
    // stable without being done. Count only polls where every group is Stable.
    const described = await admin.describeGroups(groups);
    const allStable = described.groups.every((g) => g.state === "Stable" && g.members.length > 0);
    const sourceDone =
      allStable && lags.every((l) => exactTopics.every((t) => (l.lagByTopic[t] ?? 0) === 0));
    const fingerprint = JSON.stringify(lags);
    stable = sourceDone && fingerprint === previous ? stable + 1 : 0;
    previous = fingerprint;
    if (
      stable >= needed - 1 &&
      opts.kafka &&
      (await anyUnread(opts.kafka, admin, lags, exactTopics))
    )
      stable = 0;
    if (stable >= needed - 1) return lags;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
  throw new Error(
    `the aggregator did not catch up within ${Math.round(opts.timeoutMs / 1000)}s; lag: ${JSON.stringify(lags)}`,
  );
}

/** Whether any group has a record left to read on a topic outside `exactTopics` that shows lag. */
async function anyUnread(
  kafka: Kafka,
  admin: Admin,
  lags: GroupLag[],
  exactTopics: string[],
): Promise<boolean> {
  for (const l of lags) {
    for (const [topic, lag] of Object.entries(l.lagByTopic)) {
      if (lag === 0 || exactTopics.includes(topic)) continue;
      const unread = await unreadRecords({
        kafka,
        admin,
        groupId: l.groupId,
        topic,
        limit: 1,
      }).catch(() => ({ total: 1 }));
      if (unread.total > 0) return true;
    }
  }
  return false;
}

/**
 * Records of `topic` that consumer group `groupId` has not consumed: read
 * (read_committed) from the group's committed offset to the high watermark of
 * every partition that has lag. On a topic written in transactions the lag
 * also counts commit and abort markers, which occupy offsets but are never
 * delivered: the tail of a repartition partition written by several
 * producers holds one marker per producer, so its lag settles at a few while
 * nothing is left to read. This counts only the records a consumer would get.
 *
 * @param args - a kafkajs client and a connected admin, the group and topic,
 *   how long the read may take
 * @returns unread records per partition (partitions without lag omitted) and their sum
 * @throws Error when the read does not reach every high watermark in time
 */
export async function unreadRecords(args: {
  kafka: Kafka;
  admin: Admin;
  groupId: string;
  topic: string;
  timeoutMs?: number;
  /** Stop reading once this many unread records were found. @defaultValue no limit */
  limit?: number;
}): Promise<{ total: number; byPartition: Record<number, number> }> {
  const { kafka, admin, topic } = args;
  const committed = (await admin.fetchOffsets({ groupId: args.groupId, topics: [topic] }))[0];
  const ends = await admin.fetchTopicOffsets(topic);
  const want = new Map<number, { from: bigint; high: bigint }>();
  for (const e of ends) {
    const c = committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? "-1";
    const from = BigInt(c) < 0n ? BigInt(e.low) : BigInt(c);
    if (BigInt(e.high) > from) want.set(e.partition, { from, high: BigInt(e.high) });
  }
  const byPartition: Record<number, number> = {};
  if (want.size === 0) return { total: 0, byPartition };
  // Offsets seen, per partition: a batch fetched twice is counted once.
  const seen = new Map<number, Set<string>>([...want.keys()].map((p) => [p, new Set<string>()]));
  const groupId = `${args.groupId}-unread-${randomBytes(4).toString("hex")}`;
  await admin.setOffsets({
    groupId,
    topic,
    partitions: ends.map((e) => ({
      partition: e.partition,
      offset: (want.get(e.partition)?.from ?? BigInt(e.high)).toString(),
    })),
  });
  const reached = new Map<number, bigint>();
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
  let settle!: (err?: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  let found = 0;
  const check = () => {
    if (args.limit !== undefined && found >= args.limit) return settle();
    for (const [p, w] of want) if ((reached.get(p) ?? w.from) < w.high) return;
    settle();
  };
  const timer = setTimeout(
    () =>
      settle(
        new Error(
          `reading ${topic} after the committed offsets of ${args.groupId} did not reach the end in ${args.timeoutMs ?? 30_000} ms`,
        ),
      ),
    args.timeoutMs ?? 30_000,
  );
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const b = e.payload as { topic: string; partition: number; lastOffset: string | null };
    if (b.topic !== topic || b.lastOffset === null || !want.has(b.partition)) return;
    const next = BigInt(b.lastOffset) + 1n;
    if (next > (reached.get(b.partition) ?? 0n)) reached.set(b.partition, next);
    check();
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const w = want.get(batch.partition);
        if (!w) return;
        for (const m of batch.messages) {
          const o = BigInt(m.offset);
          const offsets = seen.get(batch.partition);
          if (o >= w.from && o < w.high && offsets && !offsets.has(m.offset)) {
            offsets.add(m.offset);
            found++;
          }
        }
        check();
      },
    });
    check();
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  let total = 0;
  for (const [p, offsets] of seen) {
    byPartition[p] = offsets.size;
    total += offsets.size;
  }
  return { total, byPartition };
}
