// W3C trace context through a real broker: headers written by
// injectTraceContext (and by @sluice/producer under an active span) come back
// out of Kafka and extractTraceContext / withTraceContext continue the trace.
import { AsyncLocalStorage } from "node:async_hooks";
import * as otel from "@opentelemetry/api";
import {
  extractTraceContext,
  injectTraceContext,
  parseTraceparent,
  withTraceContext,
} from "@sluice/observability";
import { createProducer } from "@sluice/producer";
import { defineSchema } from "@sluice/schema";
import { type IHeaders, Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim())
  .filter(Boolean);
const prefix = `obs_trace_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
const kafka = new Kafka({ clientId: prefix, brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TP = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

const Ev = defineSchema({
  subject: "observability-trace-test",
  schema: {
    type: "object",
    properties: { user_id: { type: "string" }, n: { type: "integer" } },
    required: ["user_id", "n"],
    additionalProperties: false,
  } as const,
});

/** Reads `count` records of `topic` from the beginning. */
async function read(topic: string, count: number): Promise<IHeaders[]> {
  const consumer = kafka.consumer({ groupId: `${prefix}-${topic}`, maxWaitTimeInMs: 100 });
  const out: IHeaders[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        out.push(message.headers ?? {});
        if (out.length >= count) resolve();
      },
    });
  });
  await Promise.race([
    done,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error("read timed out")), 30_000).unref(),
    ),
  ]);
  await consumer.disconnect();
  await admin.deleteGroups([`${prefix}-${topic}`]).catch(() => {});
  return out;
}

beforeAll(async () => {
  const als = new AsyncLocalStorage<otel.Context>();
  otel.context.setGlobalContextManager({
    active: () => als.getStore() ?? otel.ROOT_CONTEXT,
    with: (ctx, fn, thisArg, ...args) => als.run(ctx, () => fn.apply(thisArg, args)),
    bind: (_ctx, target) => target,
    enable() {
      return this;
    },
    disable() {
      return this;
    },
  });
  await admin.connect();
});
afterAll(async () => {
  otel.context.disable();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
});

describe("trace context through Kafka", () => {
  it("inject → Kafka → extract round trip, and the consumer side continues the trace", async () => {
    const topic = `${prefix}-raw`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { value: "a", headers: injectTraceContext({ other: "x" }, parseTraceparent(TP)) },
        { value: "b", headers: injectTraceContext({}) }, // nothing to carry
      ],
    });
    await producer.disconnect();
    const [withTrace, without] = await read(topic, 2);
    const parent = extractTraceContext(withTrace);
    expect(parent?.traceparent).toBe(TP);
    expect(String(withTrace?.other)).toBe("x");
    expect(extractTraceContext(without)).toBeUndefined();
    // downstream: a child span inside the record's context keeps the trace id
    const out = withTraceContext(withTrace, () => {
      const child = otel.trace.setSpanContext(otel.context.active(), {
        traceId: otel.trace.getSpanContext(otel.context.active())!.traceId,
        spanId: "2222222222222222",
        traceFlags: 1,
      });
      return otel.context.with(child, () => injectTraceContext({}));
    });
    expect(out.traceparent).toBe(`00-${TRACE_ID}-2222222222222222-01`);
  });

  it("@sluice/producer stamps the active span; extractTraceContext reads it back from the broker", async () => {
    const topic = `${prefix}-prod`;
    const producer = createProducer({ kafka, topic, schema: Ev, key: "user_id" });
    try {
      await producer.ensureTopic({ partitions: 1 });
      await withTraceContext({ traceparent: TP }, () => producer.send({ user_id: "u", n: 1 }));
      await producer.send({ user_id: "u", n: 2 }); // no active span
      await producer.flush();
    } finally {
      await producer.close();
    }
    const [first, second] = await read(topic, 2);
    expect(extractTraceContext(first)).toMatchObject({
      traceId: TRACE_ID,
      spanId: "00f067aa0ba902b7",
    });
    expect(extractTraceContext(second)).toBeUndefined();
  });
});
