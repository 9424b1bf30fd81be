// Stable committed offsets on the broker (OffsetFetch v7, require_stable):
// while a transaction holding an offset commit of the group is open, the
// fetch waits (kafkajs's own fetchOffsets answers the previous offset); it
// answers the new offset once the transaction commits, the previous one once
// it aborts, and -1 for a group with nothing committed.
import kafkajs, { type Admin, type Consumer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKafkaProducer, fetchStableOffsets, onPrivateCluster } from "../src/index.js";
import { kafkaClient, topicNamer, uniqueName } from "./helpers.js";

const { Kafka: KafkaClass } = kafkajs;
const kafka = kafkaClient();
const topicName = topicNamer(kafka);

/** Settles to what `p` settles to, and says meanwhile whether it has. */
function watch<T>(p: Promise<T>) {
  const state = { settled: false, promise: p };
  p.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

describe("fetchStableOffsets on the broker", () => {
  const source = topicName("so_src");
  const admin = kafka.admin();
  // a private cluster the way a caller gets one: an admin made from a child client
  const hooked = onPrivateCluster(
    kafka,
    (child) => KafkaClass.prototype.admin.call(child) as Admin,
    () => {},
  );
  const reader = hooked.made as Admin;
  const cluster = hooked.cluster as object;

  beforeAll(async () => {
    expect(hooked.reason).toBeUndefined();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: source, numPartitions: 2 }],
    });
    await reader.connect();
  });
  afterAll(async () => {
    await reader.disconnect();
    await admin.disconnect();
  });

  it("answers -1 for a group with nothing committed", async () => {
    const groupId = uniqueName("so-empty");
    await expect(
      fetchStableOffsets(cluster, groupId, [{ topic: source, partitions: [0, 1] }]),
    ).resolves.toEqual([
      { topic: source, partition: 0, offset: "-1" },
      { topic: source, partition: 1, offset: "-1" },
    ]);
  });

  it("waits while a transaction holds the group's offset commit: the new offset after commit, the previous after abort", async () => {
    const groupId = uniqueName("so-group");
    const producer = createKafkaProducer({
      kafka,
      config: { transactionalId: uniqueName("so-tx"), idempotent: true, maxInFlightRequests: 1 },
    });
    const asked = [{ topic: source, partitions: [0] }];
    const offsetsIn = (offset: string) => ({
      consumerGroupId: groupId,
      topics: [{ topic: source, partitions: [{ partition: 0, offset }] }],
    });
    const kafkajsOffset = async () => {
      const [topic] = await admin.fetchOffsets({ groupId, topics: [source] });
      return topic?.partitions.find((p) => p.partition === 0)?.offset;
    };
    await producer.connect();
    try {
      const first = await producer.transaction();
      await first.sendOffsets(offsetsIn("5"));
      await first.commit();
      await expect(fetchStableOffsets(cluster, groupId, asked)).resolves.toEqual([
        { topic: source, partition: 0, offset: "5" },
      ]);

      // open: ended with a commit, then with an abort
      const pendingUntil = async (offset: string, end: "commit" | "abort") => {
        const open = await producer.transaction();
        await open.sendOffsets(offsetsIn(offset));
        const fetching = watch(fetchStableOffsets(cluster, groupId, asked));
        await new Promise((r) => setTimeout(r, 300));
        expect(fetching.settled).toBe(false);
        const unstable = await kafkajsOffset(); // what a read without require_stable gives
        await (end === "commit" ? open.commit() : open.abort());
        return { unstable, stable: await fetching.promise };
      };
      expect(await pendingUntil("8", "commit")).toEqual({
        unstable: "5",
        stable: [{ topic: source, partition: 0, offset: "8" }],
      });
      expect(await pendingUntil("11", "abort")).toEqual({
        unstable: "8",
        stable: [{ topic: source, partition: 0, offset: "8" }],
      });
    } finally {
      await producer.disconnect();
    }
  });

  it("reads through a consumer's private cluster too (the windowing runtime's)", async () => {
    const groupId = uniqueName("so-consumer");
    const made = onPrivateCluster(
      kafka,
      (child) => KafkaClass.prototype.consumer.call(child, { groupId }) as Consumer,
      () => {},
    );
    expect(made.reason).toBeUndefined();
    const consumer = made.made as Consumer;
    const producer = createKafkaProducer({
      kafka,
      config: { transactionalId: uniqueName("so-tx"), idempotent: true, maxInFlightRequests: 1 },
    });
    await Promise.all([consumer.connect(), producer.connect()]);
    try {
      const t = await producer.transaction();
      await t.sendOffsets({
        consumerGroupId: groupId,
        topics: [{ topic: source, partitions: [{ partition: 1, offset: "3" }] }],
      });
      await t.commit();
      await expect(
        fetchStableOffsets(made.cluster as object, groupId, [
          { topic: source, partitions: [0, 1] },
        ]),
      ).resolves.toEqual([
        { topic: source, partition: 0, offset: "-1" },
        { topic: source, partition: 1, offset: "3" },
      ]);
    } finally {
      await Promise.all([consumer.disconnect(), producer.disconnect()]);
    }
  });
});
