import { defineSchema } from "@sluice/schema";
import kafkajs, { type IHeaders, type Kafka } from "kafkajs";
import { afterAll } from "vitest";
import { registerCompressionCodecs } from "../src/index.js";

const { Kafka: KafkaClass, logLevel } = kafkajs;

export const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

export function kafkaClient(b: string[] = brokers): Kafka {
  return new KafkaClass({
    clientId: "sluice-producer-test",
    brokers: b,
    logLevel: logLevel.NOTHING,
  });
}

export const TestEvent = defineSchema({
  subject: "producer-test-event",
  schema: {
    type: "object",
    properties: {
      user_id: { type: "string", minLength: 1 },
      seq: { type: "integer", minimum: 0 },
      ts: { type: "integer" },
      pad: { type: "string" },
    },
    required: ["user_id", "seq", "ts"],
    additionalProperties: false,
  } as const,
});

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: string;
  headers: Record<string, string>;
  timestamp: string;
}

function headerStrings(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v !== undefined) out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  }
  return out;
}

/** Reads a topic from the beginning until `count` records arrived (or `idleMs` passed with no new record after `count`). */
export async function readAll(
  kafka: Kafka,
  topic: string,
  count: number,
  { timeoutMs = 60_000, settleMs = 1500 } = {},
): Promise<ReadRecord[]> {
  registerCompressionCodecs();
  const consumer = kafka.consumer({ groupId: uniqueName("reader"), maxWaitTimeInMs: 200 });
  const out: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let reached: () => void = () => {};
    const done = new Promise<void>((r) => {
      reached = r;
    });
    let settleTimer: NodeJS.Timeout | undefined;
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          out.push({
            partition: batch.partition,
            offset: m.offset,
            key: m.key ? m.key.toString() : null,
            value: m.value ? m.value.toString() : "",
            headers: headerStrings(m.headers),
            timestamp: m.timestamp,
          });
        }
        if (out.length >= count) {
          // keep reading a little longer to catch duplicates
          if (settleTimer) clearTimeout(settleTimer);
          settleTimer = setTimeout(reached, settleMs);
        }
      },
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, timeoutMs))]);
    if (settleTimer) clearTimeout(settleTimer);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

export async function deleteTopics(kafka: Kafka, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Unique topic names for one test file; each name (and its `.dlq`) is
 * deleted after the file's tests.
 */
export function topicNamer(kafka: Kafka): (prefix: string) => string {
  const created: string[] = [];
  afterAll(async () => {
    if (created.length) await deleteTopics(kafka, created);
  });
  return (prefix) => {
    const t = uniqueName(prefix);
    created.push(t, `${t}.dlq`);
    return t;
  };
}
