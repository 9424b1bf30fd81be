// During a real run (producer → Kafka → windowing job), scrape /metrics over
// HTTP and check that the counters equal the counts actually produced,
// processed, late and dead-lettered, and that /readyz follows the job.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createMetrics, createReadiness, startObservabilityServer } from "@sluice/observability";
import { createProducer } from "@sluice/producer";
import { defineSchema } from "@sluice/schema";
import { count, createJob, tumbling } from "@sluice/windowing";
import { Kafka, logLevel } from "kafkajs";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { metricTotal } from "./helpers.js";

const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);
const unique = (p: string) =>
  `${p}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

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

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const kafka = new Kafka({ clientId: unique("obs-pipeline"), brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const prefix = unique("obs_pipe");
const dirs: string[] = [];
afterAll(async () => {
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.deleteGroups([prefix]).catch(() => {});
  await admin.disconnect();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("metrics during a real pipeline run", () => {
  it("counters equal the events produced, processed, late and dead-lettered", async () => {
    await admin.connect();
    const registry = new Registry();
    const metrics = createMetrics({ registry });
    const readiness = createReadiness({ sinkFailureThreshold: "5s" });
    const server = await startObservabilityServer({ port: 0, registry, readiness });
    const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
    const readyz = async () => (await fetch(`${server.url}/readyz`)).status;

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
    });
    const stateDir = mkdtempSync(path.join(tmpdir(), "obs-pipe-"));
    dirs.push(stateDir);
    const late: unknown[] = [];
    const results: unknown[] = [];
    const job = createJob<{ user_id: string; amount: number; ts: number }>({
      kafka,
      applicationId: prefix,
      source: { topic: source, schema: ClickEvent, eventTime: "ts" },
      stateDir,
      commitIntervalMs: 200,
      handleSignals: false,
    })
      .window(tumbling({ size: "10s" }))
      .aggregate({ n: count() })
      .onLate((r) => {
        late.push(r);
      })
      .to((rs) => {
        results.push(...rs);
      });
    let started = false;
    try {
      // one partition, so "late" is exact: stream time only moves forward in send order
      await producer.ensureTopic({ partitions: 1 });
      await producer.ensureTopic({ name: dlqTopic, partitions: 1 });
      const valid = 50;
      await Promise.all(
        Array.from({ length: valid }, (_, i) =>
          producer.send({ user_id: `u${i % 5}`, amount: 1, ts: i * 1000 }),
        ),
      );
      await producer.flush();
      const invalid = 3;
      await Promise.all(
        Array.from({ length: invalid }, () => producer.send({ amount: 1, ts: 0 } as never)),
      );
      const lateCount = 4;
      for (let i = 0; i < lateCount; i++)
        await producer.send({ user_id: "u1", amount: 1, ts: 1000 });
      // far in the future: closes every earlier window
      await producer.send({ user_id: "end", amount: 0, ts: 10_000_000 });
      await producer.flush();
      // records that are not even JSON, written past the producer
      const raw = kafka.producer();
      await raw.connect();
      await raw.send({ topic: source, messages: [{ value: "{nope" }, { value: "not json" }] });
      await raw.disconnect();
      const undecodable = 2;

      expect(await readyz()).toBe(503); // no job yet
      await job.start();
      started = true;
      await waitFor(async () => (await readyz()) === 200, 60_000, "/readyz to turn ready");

      const inTopic = valid + lateCount + 1 + undecodable;
      await waitFor(
        async () => {
          const s = await scrape();
          return (
            metricTotal(s, "sluice_consumer_records_total", { application_id: prefix }) >=
              inTopic &&
            metricTotal(s, "sluice_windowing_late_records_total") >= lateCount &&
            metricTotal(s, "sluice_job_dlq_records_total") >= undecodable
          );
        },
        90_000,
        "the job to process every record",
      );
      const s = await scrape();
      expect(metricTotal(s, "sluice_producer_events_total", { topic: source })).toBe(
        valid + lateCount + 1,
      );
      expect(metricTotal(s, "sluice_producer_events_total", { topic: dlqTopic })).toBe(invalid);
      expect(
        metricTotal(s, "sluice_producer_invalid_events_total", {
          topic: source,
          code: "SCHEMA_INVALID_EVENT",
        }),
      ).toBe(invalid);
      expect(metricTotal(s, "sluice_producer_dlq_events_total", { topic: source })).toBe(invalid);
      expect(
        metricTotal(s, "sluice_consumer_records_total", { application_id: prefix, topic: source }),
      ).toBe(inTopic);
      expect(
        metricTotal(s, "sluice_windowing_late_records_total", { application_id: prefix }),
      ).toBe(lateCount);
      expect(late).toHaveLength(lateCount);
      expect(metricTotal(s, "sluice_job_dlq_records_total", { application_id: prefix })).toBe(
        undecodable,
      );
      expect(metricTotal(s, "sluice_job_ready", { application_id: prefix })).toBe(1);
      expect(metricTotal(s, "sluice_job_assigned_partitions", { application_id: prefix })).toBe(1);
      expect(metricTotal(s, "sluice_producer_send_errors_total")).toBe(0);
      // windows [0,10s) … [40s,50s) closed: 5 final results
      await waitFor(async () => results.length >= 5, 30_000, "the five closed windows");
      expect(
        metricTotal(await scrape(), "sluice_windowing_closed_windows_total", {
          application_id: prefix,
        }),
      ).toBe(results.length);
    } finally {
      if (started) await job.stop();
      await producer.close();
    }
    // a stopped job is not ready
    expect(await readyz()).toBe(503);
    await server.close();
    await readiness.close();
    await metrics.close();
  });
});
