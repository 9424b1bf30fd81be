import { AsyncLocalStorage } from "node:async_hooks";
import diagnostics_channel from "node:diagnostics_channel";
import { type Context, context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { createLocalRegistry, defineSchema, HEADERS, type SchemaError } from "@sluice/schema";
import { describe, expect, it } from "vitest";
import {
  createProducer,
  murmur2Partitioner,
  ProducerError,
  type SendResult,
} from "../src/index.js";
import { brokers, kafkaClient, readAll, TestEvent, topicNamer } from "./helpers.js";

const kafka = kafkaClient();
const topicName = topicNamer(kafka);

describe("createProducer on the real broker", () => {
  it("ensureTopic is idempotent and refuses another partition count", async () => {
    const topic = topicName("ensure");
    await using producer = createProducer({ brokers, topic, schema: TestEvent });
    expect(await producer.ensureTopic({ partitions: 3 })).toEqual({ created: true, partitions: 3 });
    expect(await producer.ensureTopic({ partitions: 3 })).toEqual({
      created: false,
      partitions: 3,
    });
    const err = await producer.ensureTopic({ partitions: 5 }).catch((e: unknown) => e);
    expect(ProducerError.isInstance(err)).toBe(true);
    expect((err as ProducerError).code).toBe("PRODUCER_TOPIC_MISMATCH");
    expect((err as ProducerError).message).toContain("3 partitions");
  });

  it("PRODUCER_TOPIC_NOT_FOUND for a topic that does not exist", async () => {
    const topic = topicName("missing");
    await using producer = createProducer({ brokers, topic, schema: TestEvent });
    const err = await producer.send({ user_id: "u", seq: 0, ts: 1 }).catch((e: unknown) => e);
    expect((err as ProducerError).code).toBe("PRODUCER_TOPIC_NOT_FOUND");
  });

  it("PRODUCER_SEND_FAILED when the broker refuses a batch (record over max.message.bytes)", async () => {
    const topic = topicName("toolarge");
    await using producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      compression: "none",
    });
    await producer.ensureTopic({ partitions: 1, configs: { "max.message.bytes": "2000" } });
    const err = await producer
      .send({ user_id: "u", seq: 0, ts: 1, pad: "x".repeat(5000) })
      .catch((e: unknown) => e);
    expect((err as ProducerError).code).toBe("PRODUCER_SEND_FAILED");
    expect((err as ProducerError).retryable).toBe(false);
  });

  it("per-key order under 1,000 concurrent senders; every acked event exactly once, on its murmur2 partition", async () => {
    const topic = topicName("order");
    const partitions = 6;
    const perKey = 15;
    const batches: Array<{ topic: string; messages: number }> = [];
    const onBatch = (m: unknown) => batches.push(m as { topic: string; messages: number });
    diagnostics_channel.subscribe("sluice:producer:batch", onBatch);
    const producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      lingerMs: 2,
      maxBatchMessages: 500,
    });
    await producer.ensureTopic({ partitions });
    const acked: SendResult[] = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 1000 }, async (_, sender) => {
        const user_id = `user-${sender}`;
        // Half the senders fire all their events at once, half await each one.
        if (sender % 2 === 0) {
          const results = await Promise.all(
            Array.from({ length: perKey }, (_, seq) =>
              producer.send({ user_id, seq, ts: t0 + seq }),
            ),
          );
          acked.push(...results);
        } else {
          for (let seq = 0; seq < perKey; seq++) {
            acked.push(await producer.send({ user_id, seq, ts: t0 + seq }));
          }
        }
      }),
    );
    await producer.close();
    diagnostics_channel.unsubscribe("sluice:producer:batch", onBatch);
    expect(acked).toHaveLength(1000 * perKey);
    // batching happened: far fewer requests than events
    expect(batches.length).toBeLessThan(1000 * perKey);
    expect(batches.reduce((n, b) => n + b.messages, 0)).toBe(1000 * perKey);

    const records = await readAll(kafka, topic, 1000 * perKey);
    expect(records).toHaveLength(1000 * perKey);
    const partition = murmur2Partitioner();
    const byKey = new Map<string, number[]>();
    const sorted = [...records].sort(
      (a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset),
    );
    for (const r of sorted) {
      const ev = TestEvent.decode(r.value);
      expect(r.key).toBe(ev.user_id);
      expect(r.headers[HEADERS.schemaId]).toBeUndefined();
      expect(r.partition).toBe(partition(Buffer.from(ev.user_id), partitions));
      const list = byKey.get(ev.user_id) ?? [];
      list.push(ev.seq);
      byKey.set(ev.user_id, list);
    }
    expect(byKey.size).toBe(1000);
    const expected = Array.from({ length: perKey }, (_, i) => i);
    for (const seqs of byKey.values()) expect(seqs).toEqual(expected);
    // every ack points at the record it acknowledged
    const at = new Map(records.map((r) => [`${r.partition}:${r.offset}`, r]));
    for (const a of acked.slice(0, 200)) {
      expect(at.has(`${a.partition}:${a.offset}`)).toBe(true);
    }
  });

  it("invalid events go to <topic>.dlq with reason headers; counts exact", async () => {
    const topic = topicName("dlq");
    const invalid: unknown[] = [];
    const onInvalid = (m: unknown) => invalid.push(m);
    diagnostics_channel.subscribe("sluice:producer:invalid", onInvalid);
    await using producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      onInvalid: "dlq",
    });
    await producer.ensureTopic({ partitions: 2 });
    await producer.ensureTopic({ name: producer.dlqTopic, partitions: 1 });
    const sends: Promise<SendResult>[] = [];
    let bad = 0;
    for (let i = 0; i < 300; i++) {
      if (i % 7 === 3) {
        bad++;
        sends.push(producer.send({ user_id: `u${i}`, seq: -i, ts: 1 }));
      } else if (i % 11 === 5) {
        bad++;
        sends.push(producer.send({ user_id: `u${i}`, seq: i } as never));
      } else {
        sends.push(producer.send({ user_id: `u${i}`, seq: i, ts: 1 }));
      }
    }
    const results = await Promise.all(sends);
    diagnostics_channel.unsubscribe("sluice:producer:invalid", onInvalid);
    expect(results.filter((r) => r.dlq)).toHaveLength(bad);
    expect(results.filter((r) => r.dlq).every((r) => r.topic === producer.dlqTopic)).toBe(true);
    expect(invalid).toHaveLength(bad);
    expect(invalid[0]).toEqual({ topic, code: "SCHEMA_INVALID_EVENT", dlq: true });

    const main = await readAll(kafka, topic, 300 - bad);
    const dead = await readAll(kafka, producer.dlqTopic, bad);
    expect(main).toHaveLength(300 - bad);
    expect(dead).toHaveLength(bad);
    for (const r of dead) {
      expect(r.headers[HEADERS.errorCode]).toBe("SCHEMA_INVALID_EVENT");
      expect(r.headers[HEADERS.errorSource]).toBe(topic);
      expect(r.headers[HEADERS.errorMessage]).toMatch(/\/seq|ts/);
      expect(TestEvent.validate(JSON.parse(r.value))).toBe(false);
    }
  });

  it.each(["none", "gzip", "snappy", "lz4", "zstd"] as const)(
    "compression %s round-trips, with schema headers on every record",
    async (compression) => {
      const topic = topicName(`codec_${compression}`);
      const schema = { ...TestEvent, id: 42 };
      await using producer = createProducer({ brokers, topic, schema, compression });
      await producer.ensureTopic({ partitions: 1 });
      const ts = Date.UTC(2024, 0, 1);
      await Promise.all(
        Array.from({ length: 50 }, (_, seq) =>
          producer.send({ user_id: "u", seq, ts, pad: "abc".repeat(50) }),
        ),
      );
      const records = await readAll(kafka, topic, 50, { settleMs: 300 });
      expect(records.map((r) => TestEvent.decode(r.value).seq)).toEqual(
        Array.from({ length: 50 }, (_, i) => i),
      );
      const h = records[0]!.headers;
      expect(h[HEADERS.schemaId]).toBe("42");
      expect(h[HEADERS.contentType]).toBe("application/json");
      expect(Object.keys(h).sort()).toEqual(
        [HEADERS.contentType, HEADERS.eventTime, HEADERS.schemaId].sort(),
      );
      expect(h[HEADERS.eventTime]).toBe(String(ts));
      expect(records[0]!.timestamp).toBe(String(ts));
    },
  );

  it("confluent framing prefixes magic byte and schema id", async () => {
    const topic = topicName("framed");
    const schema = { ...TestEvent, id: 7 };
    await using producer = createProducer({ brokers, topic, schema, framing: "confluent" });
    await producer.ensureTopic({ partitions: 1 });
    await producer.send({ user_id: "u", seq: 1, ts: 1 });
    const [r] = await readAll(kafkaClient(), topic, 1, { settleMs: 200 });
    const raw = Buffer.from(r!.value, "latin1");
    expect(r!.value.charCodeAt(0)).toBe(0);
    expect(raw.length).toBeGreaterThan(5);
    expect(TestEvent.decode(Buffer.from(r!.value))).toEqual({ user_id: "u", seq: 1, ts: 1 });
  });

  it("adds a W3C traceparent header when an OpenTelemetry span is active", async () => {
    // Minimal AsyncLocalStorage context manager (what @opentelemetry/context-async-hooks does).
    const als = new AsyncLocalStorage<Context>();
    const manager = {
      active: () => als.getStore() ?? ROOT_CONTEXT,
      with: <A extends unknown[], F extends (...args: A) => ReturnType<F>>(
        ctx: Context,
        fn: F,
        thisArg?: ThisParameterType<F>,
        ...args: A
      ) => als.run(ctx, () => fn.apply(thisArg, args)),
      bind: <T>(_ctx: Context, target: T) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    expect(context.setGlobalContextManager(manager)).toBe(true);
    try {
      const topic = topicName("trace");
      await using producer = createProducer({ brokers, topic, schema: TestEvent });
      await producer.ensureTopic({ partitions: 1 });
      const spanContext = {
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
        traceFlags: 1,
      };
      const traced = trace.setSpanContext(ROOT_CONTEXT, spanContext);
      await context.with(traced, () => producer.send({ user_id: "u", seq: 0, ts: 1 }));
      await producer.send({ user_id: "u", seq: 1, ts: 1 });
      const records = await readAll(kafka, topic, 2, { settleMs: 200 });
      expect(records[0]!.headers[HEADERS.traceparent]).toBe(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      );
      expect(records[1]!.headers[HEADERS.traceparent]).toBeUndefined();
    } finally {
      context.disable();
    }
  });

  it("flush() sends at once despite lingerMs; a full batch is sent without waiting for it", async () => {
    const topic = topicName("flush");
    await using producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      lingerMs: "1h",
      maxBatchMessages: 5,
    });
    await producer.ensureTopic({ partitions: 1 });
    let acked = 0;
    const count = (p: Promise<unknown>) => p.then(() => acked++);
    // five events fill a batch: sent although lingerMs is an hour
    await Promise.all(
      Array.from({ length: 5 }, (_, seq) => count(producer.send({ user_id: "u", seq, ts: 1 }))),
    );
    expect(acked).toBe(5);
    const rest = Array.from({ length: 3 }, (_, i) =>
      count(producer.send({ user_id: "u", seq: 5 + i, ts: 1 })),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(acked).toBe(5); // lingering
    await producer.flush();
    expect(acked).toBe(8);
    await Promise.all(rest);
    expect(producer.bufferedBytes).toBe(0);
  });

  it("with a registry, registers the schema first and writes its id on every record", async () => {
    const topic = topicName("registry");
    await using registry = createLocalRegistry();
    const Ev = defineSchema({ subject: `${topic}-value`, schema: TestEvent.jsonSchema as never });
    await using producer = createProducer({ brokers, topic, schema: Ev, registry });
    await producer.ensureTopic({ partitions: 1 });
    await Promise.all([0, 1, 2].map((seq) => producer.send({ user_id: "u", seq, ts: 1 } as never)));
    expect(Ev.id).toBe(1);
    const records = await readAll(kafka, topic, 3, { settleMs: 200 });
    expect(records.map((r) => r.headers[HEADERS.schemaId])).toEqual(["1", "1", "1"]);

    // an incompatible schema is refused by the registry: sends reject with its error
    const Broken = defineSchema({
      subject: `${topic}-value`,
      schema: { type: "object", properties: { user_id: { type: "integer" } } },
    });
    await using bad = createProducer({ brokers, topic, schema: Broken, registry });
    const err = await bad.send({ user_id: 1 }).catch((e: unknown) => e);
    expect((err as SchemaError).code).toBe("SCHEMA_INCOMPATIBLE");
  });

  it("PRODUCER_PARTITIONER_FAILED when a custom partitioner throws or returns no valid partition", async () => {
    const topic = topicName("partitioner");
    let mode: "ok" | "range" | "throw" = "ok";
    await using producer = createProducer({
      brokers,
      topic,
      schema: TestEvent,
      partitioner: (_key, n) => {
        if (mode === "throw") throw new Error("no partition for you");
        return mode === "range" ? n : n - 1;
      },
    });
    await producer.ensureTopic({ partitions: 2 });
    expect((await producer.send({ user_id: "u", seq: 0, ts: 1 })).partition).toBe(1);
    mode = "range";
    const e1 = await producer.send({ user_id: "u", seq: 1, ts: 1 }).catch((e: unknown) => e);
    expect((e1 as ProducerError).code).toBe("PRODUCER_PARTITIONER_FAILED");
    mode = "throw";
    const e2 = await producer.send({ user_id: "u", seq: 2, ts: 1 }).catch((e: unknown) => e);
    expect((e2 as ProducerError).code).toBe("PRODUCER_PARTITIONER_FAILED");
    expect(producer.bufferedBytes).toBe(0);
  });
});
