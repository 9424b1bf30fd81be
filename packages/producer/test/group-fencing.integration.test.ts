// Offset commits fenced by group generation on the broker: a transaction
// whose offsets carry the member's current generation commits; once a second
// member joins, the first member's previous generation is refused
// (ILLEGAL_GENERATION), its transaction aborts with its records and offsets,
// and the new generation commits. The group's offsets are read stable
// (fetchStableOffsets): EndTxn answers before the broker writes the
// transaction markers, and until then an offset fetch without require_stable
// answers the last stable offset.
import kafkajs, { type Consumer } from "kafkajs";
import { describe, expect, it } from "vitest";
import {
  createKafkaProducer,
  fetchStableOffsets,
  type GroupGeneration,
  onPrivateCluster,
  recordGroupGenerations,
  sendOffsetsFenced,
} from "../src/index.js";
import { kafkaClient, readAll, topicNamer, uniqueName } from "./helpers.js";

const { Kafka: KafkaClass } = kafkajs;
const kafka = kafkaClient();
const topicName = topicNamer(kafka);

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("offset commits fenced by group generation, on the broker", () => {
  it("commits with the current generation, refuses a stale one, and its transaction aborts", async () => {
    const source = topicName("gf_src");
    const out = topicName("gf_out");
    const groupId = uniqueName("gf-group");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: source, numPartitions: 2 },
        { topic: out, numPartitions: 1 },
      ],
    });
    const generations: GroupGeneration[] = [];
    const hooked = onPrivateCluster(
      kafka,
      (child) => KafkaClass.prototype.consumer.call(child, { groupId }) as Consumer,
      (broker) => recordGroupGenerations(broker, (g) => generations.push(g)),
    );
    expect(hooked.reason).toBeUndefined();
    const first = hooked.made as Consumer;
    const second = kafka.consumer({ groupId });
    const producer = createKafkaProducer({
      kafka,
      config: { transactionalId: uniqueName("gf-tx"), idempotent: true, maxInFlightRequests: 1 },
    });
    const commit = async (label: string, offset: string, g: GroupGeneration) => {
      const t = await producer.transaction();
      await t.send({ topic: out, messages: [{ value: label }] });
      try {
        await sendOffsetsFenced(
          producer,
          t,
          {
            consumerGroupId: groupId,
            topics: [{ topic: source, partitions: [{ partition: 0, offset }] }],
          },
          g,
        );
        await t.commit();
        return "committed";
      } catch (err) {
        await t.abort();
        return (err as { type?: string }).type ?? String(err);
      }
    };
    try {
      await first.connect();
      await first.subscribe({ topic: source, fromBeginning: true });
      await first.run({ eachMessage: async () => {} });
      await until(() => generations.length > 0, "the first member to join");
      await producer.connect();
      const joined = generations.at(-1) as GroupGeneration;
      expect(joined.groupId).toBe(groupId);

      expect(await commit("current", "5", joined)).toBe("committed");

      // A second member joins: the group moves to a new generation.
      await second.connect();
      await second.subscribe({ topic: source, fromBeginning: true });
      await second.run({ eachMessage: async () => {} });
      await until(
        () => generations.some((g) => g.generationId > joined.generationId),
        "the first member to rejoin in a new generation",
      );
      const current = generations.at(-1) as GroupGeneration;
      expect(current.memberId).toBe(joined.memberId);

      expect(await commit("stale", "7", joined)).toBe("ILLEGAL_GENERATION");
      expect(await commit("renewed", "9", current)).toBe("committed");

      // through the first member's private cluster, as the windowing runtime reads them
      const offsets = await fetchStableOffsets(hooked.cluster as object, groupId, [
        { topic: source, partitions: [0, 1] },
      ]);
      expect(offsets.find((p) => p.partition === 0)?.offset).toBe("9");
      const records = await readAll(kafka, out, 2, { settleMs: 1000 });
      expect(records.map((r) => r.value)).toEqual(["current", "renewed"]);
    } finally {
      await Promise.all([first.disconnect(), second.disconnect(), producer.disconnect()]);
      await admin.deleteTopics({ topics: [source, out] }).catch(() => {});
      await admin.disconnect();
    }
  });
});
