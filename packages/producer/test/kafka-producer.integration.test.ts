// createKafkaProducer on the broker: transactions written with Sluice's record
// encoder commit and abort as kafkajs's do; a read_committed reader sees
// exactly the committed records. A transactional producer looks each of its
// coordinators up once, whichever encoder it uses.
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
      // every send carried partitions: kafkajs got one message per partition
      expect(producer.groupsByPartition).toBe(true);
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

  it("an idempotent producer mixing sends grouped by partition with keyed sends writes every record once, in order", async () => {
    const topic = topicName("kp_mixed");
    const admin = kafka.admin();
    await admin.connect();
    const producer = createKafkaProducer({
      kafka,
      config: { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false },
      recordEncoder: "sluice",
    });
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
      });
      await producer.connect();
      expect(producer.groupsByPartition).toBe(true);
      // The broker checks each batch's first sequence against the records
      // it holds from this producer id: a sequence counted in kafkajs
      // messages (one per partition when grouped) instead of records is
      // refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
      const sent: string[] = [];
      for (let round = 0; round < 6; round++) {
        const grouped = round % 2 === 0;
        const messages = Array.from({ length: 120 + round * 7 }, (_, i) => ({
          key: `k${i % 11}`,
          value: `r${round}-${i}`,
          ...(grouped ? { partition: i % 3 } : {}),
        }));
        if (round === 4) {
          await producer.sendBatch({
            topicMessages: [
              { topic, messages: messages.slice(0, 60) },
              { topic, messages: messages.slice(60) },
            ],
          });
        } else {
          await producer.send({ topic, messages });
        }
        sent.push(...messages.map((m) => m.value));
      }
      const ends = await admin.fetchTopicOffsets(topic);
      expect(ends.reduce((s, o) => s + Number(o.high), 0)).toBe(sent.length);
      const back = await readAll(kafka, topic, sent.length, { settleMs: 500 });
      expect(back.map((r) => r.value).sort()).toEqual([...sent].sort());
      // a grouped round's records keep their partition and their order in it
      for (const p of [0, 1, 2]) {
        const round0 = back.filter((r) => r.partition === p && r.value.startsWith("r0-"));
        expect(round0.map((r) => r.value)).toEqual(
          Array.from({ length: 40 }, (_, j) => `r0-${3 * j + p}`),
        );
      }
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  for (const recordEncoder of ["auto", "kafkajs"] as const) {
    it(`a transactional producer (recordEncoder '${recordEncoder}') looks each coordinator up once across transactions with sendOffsets, commits and an abort`, async () => {
      const topic = topicName("kp_coord");
      const groupId = uniqueName("kp-coord-group");
      const admin = kafka.admin();
      await admin.connect();
      const producer = createKafkaProducer({
        kafka,
        config: {
          transactionalId: uniqueName("kp-coord"),
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
        },
        recordEncoder,
      });
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
        });
        await producer.connect();
        const committed: string[] = [];
        const transactions = 6;
        for (let t = 0; t < transactions; t++) {
          const tx = await producer.transaction();
          const values = [`t${t}-a`, `t${t}-b`, `t${t}-c`];
          await tx.send({
            topic,
            messages: values.map((value, i) => ({ value, partition: i % 2 })),
          });
          await tx.sendOffsets({
            consumerGroupId: groupId,
            topics: [{ topic, partitions: [{ partition: 0, offset: String(10 * (t + 1)) }] }],
          });
          // the fourth transaction is aborted: a read_committed reader skips its records
          if (t === 3) {
            await tx.abort();
          } else {
            await tx.commit();
            committed.push(...values);
          }
        }
        const lookups = producer.coordinatorLookups!;
        // one lookup per coordinator (the transaction's, the group's); kafkajs
        // alone sends one before each of the 25 transactional requests above
        // (more when it retries AddPartitionsToTxn after CONCURRENT_TRANSACTIONS)
        expect(lookups.sent).toBe(2);
        expect(lookups.cached).toBeGreaterThanOrEqual(23);
        expect(producer.recordEncoder).toBe(recordEncoder === "auto" ? "sluice" : "kafkajs");
        if (recordEncoder === "auto") expect(producer.encodedRequests.sluice).toBe(transactions);

        const back = await readAll(kafka, topic, committed.length, { settleMs: 1000 });
        expect(back.map((r) => r.value).sort()).toEqual([...committed].sort());
        const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
        expect(offsets?.partitions.find((p) => p.partition === 0)?.offset).toBe(
          String(10 * transactions),
        );
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  }
});
