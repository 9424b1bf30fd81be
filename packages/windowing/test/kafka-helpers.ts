// Helpers for tests against the real local broker: unique topics, producing
// test events, reading a topic read_committed, cleanup.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import {
  type Admin,
  type Consumer,
  type ConsumerConfig,
  Kafka,
  logLevel,
  type Message,
} from "kafkajs";
import { afterAll, beforeAll } from "vitest";

export const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
}

export function kafkaClient(clientId = "windowing-test"): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

export async function createTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
  });
}

export async function produce(kafka: Kafka, topic: string, messages: Message[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 5000) {
      await producer.send({ topic, messages: messages.slice(i, i + 5000) });
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * Reads every committed record of `topic` up to its current end, with a plain
 * kafkajs read_committed consumer unless `makeConsumer` makes another.
 */
export async function readAll(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  timeoutMs = 60_000,
  makeConsumer: (kafka: Kafka, config: ConsumerConfig) => Consumer = (k, c) => k.consumer(c),
): Promise<
  {
    key: string | null;
    value: string | null;
    partition: number;
    offset: string;
    headers: Record<string, string>;
  }[]
> {
  const ends = await admin.fetchTopicOffsets(topic);
  const want = new Map(
    ends.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high)]),
  );
  const out: {
    key: string | null;
    value: string | null;
    partition: number;
    offset: string;
    headers: Record<string, string>;
  }[] = [];
  if (want.size === 0) return out;
  const groupId = uniqueName("reader");
  const consumer = makeConsumer(kafka, { groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
  const next = new Map<number, bigint>();
  let resolve!: () => void;
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const check = () => {
    for (const [p, end] of want) if ((next.get(p) ?? 0n) < end) return;
    resolve();
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const p = e.payload as { partition: number; lastOffset: string | null };
    if (p.lastOffset !== null) {
      const n = BigInt(p.lastOffset) + 1n;
      if (n > (next.get(p.partition) ?? 0n)) next.set(p.partition, n);
    }
    check();
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      out.push({
        key: message.key?.toString() ?? null,
        value: message.value?.toString() ?? null,
        partition,
        offset: message.offset,
        headers,
      });
    },
  });
  const timer = new Promise<void>((_, reject) =>
    setTimeout(() => reject(new Error(`reading ${topic} timed out`)), timeoutMs).unref(),
  );
  try {
    await Promise.race([done, timer]);
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => {});
  }
  return out;
}

export async function deleteTopicsWithPrefix(admin: Admin, prefixes: string[]): Promise<void> {
  const topics = (await admin.listTopics()).filter((t) => prefixes.some((p) => t.startsWith(p)));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
}

/**
 * A broker test file's shared resources: an admin connected before its
 * tests; after them, every child process still running is SIGKILLed, topics
 * named with the registered prefixes are deleted, directories removed.
 */
export function brokerFixture(): {
  kafka: Kafka;
  admin: Admin;
  prefixes: string[];
  dirs: string[];
  children: ChildProcess[];
} {
  const kafka = kafkaClient();
  const admin = kafka.admin();
  const prefixes: string[] = [];
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await deleteTopicsWithPrefix(admin, prefixes);
    await admin.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return { kafka, admin, prefixes, dirs, children };
}
