// Fault tests on a PRIVATE throwaway broker (never the shared one on 9092):
// stopped and restarted while sends or transactions are in flight.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PrivateKafka, startPrivateKafka } from "../../../scripts/stack.mjs";
import { createKafkaProducer, createProducer, type SendResult } from "../src/index.js";
import { kafkaClient, readAll, TestEvent } from "./helpers.js";

const dir = mkdtempSync(path.join(tmpdir(), "sluice-producer-fault-"));
const port = 29_200 + Math.floor(Math.random() * 600) * 2;
let broker: PrivateKafka | undefined;

beforeAll(async () => {
  broker = await startPrivateKafka({ port, dir });
}, 180_000);

afterAll(async () => {
  await broker?.stop({ signal: "SIGKILL" }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function restart(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  await broker!.stop({ signal });
  broker = undefined;
}

describe("producer while the broker is stopped and restarted", () => {
  it("keeps buffered bytes under maxBufferedBytes while the broker is down, then delivers everything once", async () => {
    const brokers = [`127.0.0.1:${port}`];
    const topic = "membound";
    const maxBufferedBytes = 64 * 1024;
    const producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      maxBufferedBytes,
      lingerMs: 5,
      deliveryTimeoutMs: "5m",
    });
    await producer.ensureTopic({ partitions: 3 });
    await producer.send({ user_id: "warm", seq: 0, ts: 1 });

    await restart("SIGTERM");
    const pad = "x".repeat(1000);
    let acked = 0;
    const results: Array<Promise<void>> = [];
    for (let s = 0; s < 100; s++) {
      results.push(
        (async () => {
          for (let seq = 0; seq < 10; seq++) {
            await producer.send({ user_id: `k${s}`, seq, ts: 1, pad });
            acked++;
          }
        })(),
      );
    }
    let maxSeen = 0;
    let maxWaiting = 0;
    for (let i = 0; i < 300; i++) {
      maxSeen = Math.max(maxSeen, producer.bufferedBytes);
      maxWaiting = Math.max(maxWaiting, producer.waitingSends);
      await sleep(10);
    }
    expect(acked).toBe(0);
    expect(maxSeen).toBeGreaterThan(maxBufferedBytes / 2);
    expect(maxSeen).toBeLessThanOrEqual(maxBufferedBytes);
    expect(maxWaiting).toBeGreaterThan(0);

    broker = await startPrivateKafka({ port, dir });
    await Promise.all(results);
    expect(acked).toBe(1000);
    await producer.close();
    const records = await readAll(kafkaClient(brokers), topic, 1001);
    expect(records).toHaveLength(1001);
    const ids = new Set(records.map((r) => r.value));
    expect(ids.size).toBe(1001);
  });

  it("every acknowledged event is present exactly once after a SIGKILL and restart mid-stream", async () => {
    const brokers = [`127.0.0.1:${port}`];
    const topic = "restart";
    const producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      lingerMs: 2,
      deliveryTimeoutMs: "5m",
    });
    await producer.ensureTopic({ partitions: 4 });
    const keys = 20;
    const next = new Array<number>(keys).fill(0);
    const sends: Array<Promise<SendResult>> = [];
    const sent: Array<{ key: string; seq: number }> = [];
    let stop = false;
    const stream = (async () => {
      while (!stop) {
        for (let k = 0; k < keys; k++) {
          const seq = next[k]!++;
          sent.push({ key: `user-${k}`, seq });
          const p = producer.send({ user_id: `user-${k}`, seq, ts: Date.now() });
          p.catch(() => undefined);
          sends.push(p);
        }
        await sleep(5);
      }
    })();
    await sleep(1500);
    await restart("SIGKILL");
    await sleep(1000);
    broker = await startPrivateKafka({ port, dir });
    await sleep(1000);
    stop = true;
    await stream;
    const settled = await Promise.allSettled(sends);
    await producer.close();
    const ackedKeys = new Set<string>();
    settled.forEach((s, i) => {
      if (s.status === "fulfilled") ackedKeys.add(`${sent[i]!.key}/${sent[i]!.seq}`);
    });
    const failures = settled.filter((s) => s.status === "rejected");
    expect(failures).toEqual([]);
    expect(ackedKeys.size).toBe(sent.length);

    const records = await readAll(kafkaClient(brokers), topic, ackedKeys.size);
    const count = new Map<string, number>();
    const perKeyOrder = new Map<string, number[]>();
    const ordered = [...records].sort(
      (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
    );
    for (const r of ordered) {
      const ev = TestEvent.decode(r.value);
      const id = `${ev.user_id}/${ev.seq}`;
      count.set(id, (count.get(id) ?? 0) + 1);
      const list = perKeyOrder.get(ev.user_id) ?? [];
      list.push(ev.seq);
      perKeyOrder.set(ev.user_id, list);
    }
    for (const id of ackedKeys) expect(count.get(id), id).toBe(1);
    expect(records).toHaveLength(ackedKeys.size);
    for (const seqs of perKeyOrder.values()) {
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it("a transactional producer looks its coordinator up again after the broker restarts, and every transaction commits", async () => {
    const brokers = [`127.0.0.1:${port}`];
    // retries that outlast the broker's restart
    const kafka = new kafkajs.Kafka({
      clientId: "producer-fault-tx",
      brokers,
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 40, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    const topic = "coordinator";
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
    });
    await admin.disconnect();
    const producer = createKafkaProducer({
      kafka,
      config: {
        transactionalId: "producer-fault-tx",
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      },
    });
    const committed: string[] = [];
    const transaction = async (tag: string) => {
      const tx = await producer.transaction();
      const values = [`${tag}-0`, `${tag}-1`];
      await tx.send({ topic, messages: values.map((value, partition) => ({ value, partition })) });
      await tx.commit();
      committed.push(...values);
    };
    await producer.connect();
    try {
      await transaction("before-0");
      await transaction("before-1");
      // InitProducerId's lookup answered every later one
      expect(producer.coordinatorLookups).toMatchObject({ sent: 1 });

      await restart("SIGTERM");
      // begun and sent while the broker is down: kafkajs retries until it is back
      const during = transaction("during");
      await sleep(1000);
      broker = await startPrivateKafka({ port, dir });
      await during;
      await transaction("after");
      // the failures to reach the broker dropped the cached answer
      expect(producer.coordinatorLookups!.sent).toBeGreaterThan(1);
    } finally {
      await producer.disconnect();
    }
    const records = await readAll(kafkaClient(brokers), topic, committed.length, {
      settleMs: 500,
    });
    expect(records.map((r) => r.value).sort()).toEqual([...committed].sort());
  });
});
