import type { Admin } from "kafkajs";

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
    if (stable >= needed - 1) return lags;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
  throw new Error(
    `the aggregator did not catch up within ${Math.round(opts.timeoutMs / 1000)}s; lag: ${JSON.stringify(lags)}`,
  );
}
