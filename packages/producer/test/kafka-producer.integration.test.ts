// createKafkaProducer on the broker: transactions written with Sluice's record
// encoder commit and abort as kafkajs's do; a read_committed reader sees
// exactly the committed records.
import { describe, expect, it } from "vitest";
import { createKafkaProducer } from "../src/index.js";
import { kafkaClient, readAll, topicNamer, uniqueName } from "./helpers.js";

const kafka = kafkaClient();
const topicName = topicNamer(kafka);

describe("createKafkaProducer on the broker", () => {
  it("commits and aborts transactions encoded by Sluice; read_committed sees exactly the committed records", async () => {
    const topic = topicName("kp_tx");
    const admin = kafka.admin();
    await admin.connect();
    const producer = createKafkaProducer({
      kafka,
      config: {
        transactionalId: uniqueName("kp-tx"),
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      },
      recordEncoder: "sluice",
    });
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
      });
      await producer.connect();
      const batch = (tag: string, n: number) =>
        Array.from({ length: n }, (_, i) => ({
          key: `k${i % 7}`,
          value: `${tag}-${i}`,
          partition: i % 2,
          headers: { tag, i: String(i) },
          timestamp: String(1_700_000_000_000 + i),
        }));
      const committed: string[] = [];
      // committed, aborted, committed again, aborted last: aborted records sit
      // between committed ones on both partitions
      for (const [tag, commit] of [
        ["c1", true],
        ["a1", false],
        ["c2", true],
        ["a2", false],
      ] as const) {
        const tx = await producer.transaction();
        // two sends per transaction: several Produce requests in one transaction
        await tx.send({ topic, messages: batch(tag, 150) });
        await tx.send({ topic, messages: batch(`${tag}b`, 50) });
        if (commit) {
          await tx.commit();
          committed.push(...batch(tag, 150).map((m) => m.value));
          committed.push(...batch(`${tag}b`, 50).map((m) => m.value));
        } else {
          await tx.abort();
        }
      }
      // one more committed record after the last abort, so the reader's end
      // lies past every aborted record
      const last = await producer.transaction();
      await last.send({
        topic,
        messages: [
          { value: "end-0", partition: 0 },
          { value: "end-1", partition: 1 },
        ],
      });
      await last.commit();
      committed.push("end-0", "end-1");

      expect(producer.recordEncoder).toBe("sluice");
      expect(producer.encodedRequests.sluice).toBeGreaterThanOrEqual(9);
      expect(producer.encodedRequests.kafkajs).toBe(0);

      // the aborted records were written: the log holds 800 data records plus
      // 5 transaction markers per partition
      const ends = await admin.fetchTopicOffsets(topic);
      expect(ends.reduce((s, o) => s + Number(o.high), 0)).toBe(800 + 2 + 10);

      const back = await readAll(kafka, topic, committed.length, { settleMs: 1000 });
      expect(back.map((r) => r.value).sort()).toEqual([...committed].sort());
      // order, keys, headers and timestamps survive per partition
      const p0 = back.filter((r) => r.partition === 0 && r.value.startsWith("c1-"));
      expect(p0.map((r) => r.value)).toEqual(Array.from({ length: 75 }, (_, j) => `c1-${2 * j}`));
      const r = back.find((x) => x.value === "c2-9");
      expect(r?.key).toBe("k2");
      expect(r?.headers).toEqual({ tag: "c2", i: "9" });
      expect(r?.timestamp).toBe(String(1_700_000_000_009));
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
