// A real producer against the broker: the counters scraped from /metrics
// equal what actually landed in the topics (their end offsets) and the
// invalid events the producer dead-lettered.

import { createMetrics, startObservabilityServer } from "@sluice/observability";
import { createProducer } from "@sluice/producer";
import { defineSchema } from "@sluice/schema";
import { Kafka, logLevel } from "kafkajs";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { metricTotal } from "./helpers.js";

const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);
const prefix = `obs_prod_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

const ClickEvent = defineSchema({
  subject: "observability-test-click",
  schema: {
    type: "object",
    properties: {
      user_id: { type: "string", minLength: 1 },
      amount: { type: "integer" },
      ts: { type: "integer" },
    },
    required: ["user_id", "amount", "ts"],
    additionalProperties: false,
  } as const,
});

const kafka = new Kafka({ clientId: prefix, brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
afterAll(async () => {
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
});

async function endOffsetSum(topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce(
    (a, o) => a + Number(o.high) - Number(o.low),
    0,
  );
}

describe("producer metrics on the real broker", () => {
  it("events, invalid and dead-lettered counters equal what reached Kafka", async () => {
    await admin.connect();
    const registry = new Registry();
    const metrics = createMetrics({ registry });
    const server = await startObservabilityServer({ port: 0, registry });
    const source = `${prefix}-events`;
    const dlqTopic = `${prefix}-events.dlq`;
    const producer = createProducer({
      kafka,
      topic: source,
      schema: ClickEvent,
      key: "user_id",
      onInvalid: "dlq",
      dlqTopic,
      lingerMs: 5,
      maxBatchMessages: 50,
    });
    try {
      await producer.ensureTopic({ partitions: 3 });
      await producer.ensureTopic({ name: dlqTopic, partitions: 1 });
      const valid = 437;
      const invalid = 7;
      const sends: Array<Promise<unknown>> = [];
      for (let i = 0; i < valid + invalid; i++) {
        sends.push(
          i % 63 === 5
            ? producer.send({ amount: i, ts: i } as never) // no user_id: schema-invalid
            : producer.send({ user_id: `u${i % 17}`, amount: i, ts: i }),
        );
      }
      await Promise.all(sends);
      await producer.flush();
      const s = await (await fetch(`${server.url}/metrics`)).text();
      const inSource = await endOffsetSum(source);
      const inDlq = await endOffsetSum(dlqTopic);
      expect(inSource).toBe(valid);
      expect(inDlq).toBe(invalid);
      expect(metricTotal(s, "sluice_producer_events_total", { topic: source })).toBe(inSource);
      expect(metricTotal(s, "sluice_producer_events_total", { topic: dlqTopic })).toBe(inDlq);
      expect(metricTotal(s, "sluice_producer_invalid_events_total", { topic: source })).toBe(inDlq);
      expect(
        metricTotal(s, "sluice_producer_invalid_events_total", { code: "SCHEMA_INVALID_EVENT" }),
      ).toBe(inDlq);
      expect(metricTotal(s, "sluice_producer_dlq_events_total", { topic: source })).toBe(inDlq);
      expect(metricTotal(s, "sluice_producer_send_errors_total")).toBe(0);
      // the batch-size histogram saw every acknowledged event once
      expect(metricTotal(s, "sluice_producer_batch_size_sum")).toBe(inSource + inDlq);
      expect(metricTotal(s, "sluice_producer_bytes_total", { topic: source })).toBeGreaterThan(0);
    } finally {
      await producer.close();
      await server.close();
      await metrics.close();
    }
  });
});
