import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";

/**
 * Counts the committed records of a topic, as a `read_committed` consumer sees
 * them: records of aborted transactions (a crashed exactly-once job's
 * unfinished work) do not count. Reads from the beginning until no record
 * arrived for `idleMs` after the end offsets were reached or the topic is empty.
 *
 * @param kafka - a kafkajs client
 * @param topic - the topic (a job's `-dlq` or `-late` topic)
 * @param opts - how long to wait for more records, and the overall timeout
 * @returns the number of committed records; 0 when the topic does not exist
 */
export async function countCommittedRecords(
  kafka: Kafka,
  topic: string,
  opts: { idleMs?: number; timeoutMs?: number } = {},
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Array<{ partition: number; high: string; low: string }>;
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    ends = await admin.fetchTopicOffsets(topic);
  } finally {
    await admin.disconnect();
  }
  if (ends.every((e) => e.high === e.low)) return 0;
  const groupId = `sluice-count-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
  let count = 0;
  let last = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        count += batch.messages.length;
        last = Date.now();
      },
    });
    // Committed records come in the first fetches; aborted ones and
    // transaction markers never do, so "quiet for idleMs" means done.
    const idle = opts.idleMs ?? 2000;
    const started = Date.now();
    const deadline = started + (opts.timeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      const quietSince = last === 0 ? started + 8000 : last;
      if (Date.now() - quietSince >= idle) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => admin.disconnect());
  }
  return count;
}
