// Proves each real part of the local stack works from Node after a clean
// `npm ci`: Kafka transactions, the ClickHouse server, embedded chDB, Redis and
// LevelDB. Every test uses its own uniquely named topic, table, key or dir.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@clickhouse/client";
import { ClassicLevel } from "classic-level";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { env, uniqueName } from "../src/env.js";

describe("kafka (KRaft broker from the Apache Kafka jars)", () => {
  const kafka = new Kafka({
    clientId: "smoke",
    brokers: env.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  });
  const topic = uniqueName("smoke_tx");
  const admin = kafka.admin();

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it("commits a transaction that a read_committed consumer sees, and hides an aborted one", async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });

    const producer = kafka.producer({
      transactionalId: uniqueName("smoke_txid"),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ key: "u1", value: "aborted" }] });
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({
      topic,
      messages: [
        { key: "u1", value: "one" },
        { key: "u2", value: "two" },
        { key: "u3", value: "three" },
      ],
    });
    await committed.commit();
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName("smoke_group"), readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`saw only ${JSON.stringify(seen)}`)), 60_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? "");
            if (seen.length >= 3) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(seen.sort()).toEqual(["one", "three", "two"]);
  });
});

describe("clickhouse server (Debian clickhouse-server)", () => {
  const client = createClient({ url: env.clickhouseUrl });
  const table = uniqueName("smoke_events");

  afterAll(async () => {
    await client.command({ query: `DROP TABLE IF EXISTS ${table}` }).catch(() => undefined);
    await client.close();
  });

  it("creates a MergeTree table, inserts JSONEachRow and selects it back", async () => {
    await client.command({
      query: `CREATE TABLE ${table} (user_id String, n UInt32, day Date) ENGINE = MergeTree() PARTITION BY day ORDER BY (user_id, n)`,
    });
    await client.insert({
      table,
      values: [
        { user_id: "u1", n: 1, day: "2026-11-25" },
        { user_id: "u2", n: 2, day: "2026-11-25" },
        { user_id: "u1", n: 3, day: "2026-11-24" },
      ],
      format: "JSONEachRow",
    });
    const rs = await client.query({
      query: `SELECT user_id, sum(n) AS total FROM ${table} GROUP BY user_id ORDER BY user_id`,
      format: "JSONEachRow",
    });
    const rows = await rs.json<{ user_id: string; total: string | number }>();
    expect(rows.map((r) => [r.user_id, Number(r.total)])).toEqual([
      ["u1", 4],
      ["u2", 2],
    ]);
  });
});

describe("embedded chDB (current ClickHouse engine)", () => {
  it("runs MergeTree with an insert deduplication token in a session", async () => {
    const { Session } = await import("chdb");
    const dir = await mkdtemp(path.join(tmpdir(), "sluice-chdb-"));
    const session = new Session(dir);
    try {
      session.query(
        "CREATE TABLE t (k String, v UInt32) ENGINE = MergeTree ORDER BY k SETTINGS non_replicated_deduplication_window = 100",
      );
      for (let i = 0; i < 2; i++) {
        session.query(
          "INSERT INTO t SETTINGS insert_deduplication_token = 'batch-1' VALUES ('a', 1), ('b', 2)",
        );
      }
      const out = session.query(
        "SELECT count() AS c, sum(v) AS s, version() AS ver FROM t",
        "JSONEachRow",
      );
      const row = JSON.parse(out.trim()) as { c: string | number; s: string | number; ver: string };
      expect(Number(row.c)).toBe(2);
      expect(Number(row.s)).toBe(3);
      expect(Number(row.ver.split(".")[0])).toBeGreaterThanOrEqual(24);
    } finally {
      session.cleanup?.();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("redis (Debian redis-server)", () => {
  it("SET/GET and a pipelined INCRBY through ioredis", async () => {
    const redis = new Redis(env.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const key = uniqueName("smoke:key");
    try {
      await redis.set(key, "hello", "EX", 60);
      expect(await redis.get(key)).toBe("hello");
      const res = await redis.pipeline().incrby(`${key}:n`, 2).incrby(`${key}:n`, 3).exec();
      expect(res?.map(([err, v]) => [err, v])).toEqual([
        [null, 2],
        [null, 5],
      ]);
    } finally {
      await redis.del(key, `${key}:n`);
      await redis.quit();
    }
  });
});

describe("classic-level (LevelDB native binding)", () => {
  it("opens, writes a batch, reads back and reopens durably", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sluice-level-"));
    try {
      const db = new ClassicLevel<string, string>(dir);
      await db.open();
      await db.batch([
        { type: "put", key: "a", value: "1" },
        { type: "put", key: "b", value: "2" },
      ]);
      await db.close();
      const again = new ClassicLevel<string, string>(dir);
      expect(await again.getMany(["a", "b", "c"])).toEqual(["1", "2", undefined]);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
