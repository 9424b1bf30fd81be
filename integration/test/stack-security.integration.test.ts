// The local stack's secured services, as the security suite and users with
// production-like settings meet them: Kafka requiring SASL (SCRAM-SHA-512 or
// PLAIN) over TLS, ClickHouse with a password user, Redis with an ACL user.
// Wrong credentials must fail fast, and no error may carry the secret.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { Kafka, logLevel, type SASLOptions } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localCredentials, type PrivateKafka, startPrivateKafka } from "../../scripts/stack.mjs";
import { env, uniqueName } from "../src/env.js";

const creds = localCredentials();

function messageChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  while (e instanceof Error) {
    parts.push(e.message, e.stack ?? "");
    e = e.cause;
  }
  return parts.join("\n");
}

describe("kafka listener requiring SASL over TLS", () => {
  let broker: PrivateKafka;
  let dir: string;
  const port = 29_192 + Math.floor(Math.random() * 50) * 4;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "sluice-secure-kafka-"));
    broker = await startPrivateKafka({ port, dir, secure: true });
  }, 120_000);

  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // Wrong credentials must fail on the first attempt, so those clients do not retry.
  const client = (sasl: SASLOptions, retries = 0) =>
    new Kafka({
      clientId: "security-test",
      brokers: broker.brokers,
      ssl: { ca: [readFileSync(broker.caFile!)] },
      sasl,
      logLevel: logLevel.NOTHING,
      retry: { retries },
    });

  it("accepts SCRAM-SHA-512 and PLAIN with the right password; a transactional round trip works", async () => {
    const kafka = client(broker.sasl!, 8);
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName("secure_topic");
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer({
      transactionalId: uniqueName("secure_tx"),
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 5 },
    });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({ topic, messages: [{ key: "u1", value: "hello" }] });
    await tx.commit();
    await producer.disconnect();
    const consumer = kafka.consumer({
      groupId: uniqueName("secure_group"),
      readUncommitted: false,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const value = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no record within 60 s")), 60_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            resolve(message.value?.toString() ?? "");
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(value).toBe("hello");
    await admin.disconnect();

    const plain = client({
      mechanism: "plain",
      username: broker.sasl!.username,
      password: broker.sasl!.password,
    }).admin();
    await plain.connect();
    expect(await plain.listTopics()).toContain(topic);
    await plain.disconnect();
  });

  it.each([
    ["a wrong password", "scram-sha-512", "sluice", "not-the-password-42"],
    ["an unknown user", "scram-sha-512", "mallory", "not-the-password-42"],
    ["a wrong PLAIN password", "plain", "sluice", "not-the-password-42"],
  ] as const)(
    "rejects %s with an authentication error that never echoes the secret",
    async (_label, mechanism, username, password) => {
      const admin = client({ mechanism, username, password }).admin();
      let caught: unknown;
      const t0 = Date.now();
      try {
        await admin.connect();
      } catch (err) {
        caught = err;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
      expect(caught, "connect must fail").toBeInstanceOf(Error);
      expect((caught as Error).name).toMatch(/SASLAuthenticationError|KafkaJS/);
      expect(Date.now() - t0).toBeLessThan(30_000);
      const text = messageChain(caught);
      expect(text).not.toContain(password);
      expect(text).not.toContain(broker.sasl!.password);
    },
  );

  it("refuses a client that does not trust the broker's certificate authority", async () => {
    const kafka = new Kafka({
      brokers: broker.brokers,
      ssl: true,
      sasl: broker.sasl!,
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    await expect(admin.connect()).rejects.toThrow();
    await admin.disconnect().catch(() => undefined);
  });
});

describe("clickhouse user with a password", () => {
  it("authenticates with the password and is refused without it, never echoing it", async () => {
    const good = createClient({
      url: env.clickhouseUrl,
      username: creds.clickhouse.username,
      password: creds.clickhouse.password,
    });
    const rs = await good.query({ query: "SELECT 'authenticated' AS u", format: "JSONEachRow" });
    expect(await rs.json()).toEqual([{ u: "authenticated" }]);
    await good.close();

    const wrong = "definitely-wrong-secret-7";
    const bad = createClient({
      url: env.clickhouseUrl,
      username: creds.clickhouse.username,
      password: wrong,
    });
    let caught: unknown;
    try {
      await bad.query({ query: "SELECT 1", format: "JSONEachRow" });
    } catch (err) {
      caught = err;
    }
    await bad.close();
    expect(caught).toBeInstanceOf(Error);
    expect(messageChain(caught)).toMatch(/password|authenticat/i);
    expect(messageChain(caught)).not.toContain(wrong);
    expect(messageChain(caught)).not.toContain(creds.clickhouse.password);
  });
});

describe("redis ACL user", () => {
  it("authenticates as the ACL user and is refused with a wrong password (WRONGPASS), never echoing it", async () => {
    const url = new URL(env.redisUrl);
    const good = new Redis({
      host: url.hostname,
      port: Number(url.port || 6379),
      username: creds.redis.username,
      password: creds.redis.password,
      lazyConnect: true,
    });
    await good.connect();
    expect(await good.call("ACL", "WHOAMI")).toBe(creds.redis.username);
    await good.quit();

    const wrong = "definitely-wrong-secret-8";
    const bad = new Redis({
      host: url.hostname,
      port: Number(url.port || 6379),
      username: creds.redis.username,
      password: wrong,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    // ioredis reports the server's refusal on its 'error' event and rejects
    // the pending connect with "Connection is closed": check both.
    const events: unknown[] = [];
    bad.on("error", (err) => events.push(err));
    let caught: unknown;
    try {
      await bad.connect();
      await bad.ping();
    } catch (err) {
      caught = err;
    }
    bad.disconnect();
    expect(caught).toBeInstanceOf(Error);
    const text = [caught, ...events].map(messageChain).join("\n");
    expect(text).toMatch(/WRONGPASS/);
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(creds.redis.password);
  });
});
