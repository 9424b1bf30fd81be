import { defineSchema } from "@sluice/schema";
import { describe, expect, it } from "vitest";
import { createProducer, ProducerError, SluiceError } from "../src/index.js";

const Ev = defineSchema({
  subject: "t",
  schema: {
    type: "object",
    properties: { user_id: { type: "string" }, ts: { type: "integer" } },
    required: ["user_id", "ts"],
    additionalProperties: false,
  } as const,
});

// A port nothing listens on: connections are refused at once.
const nowhere = ["127.0.0.1:1"];

async function rejection(p: Promise<unknown>): Promise<ProducerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(ProducerError.isInstance(err)).toBe(true);
  expect(SluiceError.isInstance(err)).toBe(true);
  return err as ProducerError;
}

function thrown(fn: () => unknown): ProducerError {
  try {
    fn();
  } catch (err) {
    expect(ProducerError.isInstance(err)).toBe(true);
    return err as ProducerError;
  }
  throw new Error("expected a ProducerError");
}

describe("createProducer options", () => {
  it.each([
    [{ topic: "", schema: Ev, brokers: nowhere }],
    [{ topic: "bad topic!", schema: Ev, brokers: nowhere }],
    [{ topic: "t", schema: {} as never, brokers: nowhere }],
    [{ topic: "t", schema: Ev }],
    [{ topic: "t", schema: Ev, brokers: nowhere, lingerMs: "soon" }],
    [{ topic: "t", schema: Ev, brokers: nowhere, maxBatchMessages: 0 }],
    [{ topic: "t", schema: Ev, brokers: nowhere, maxBufferedBytes: 1.5 }],
    [{ topic: "t", schema: Ev, brokers: nowhere, compression: "brotli" }],
    [{ topic: "t", schema: Ev, brokers: nowhere, onInvalid: "drop" }],
    [{ topic: "t", schema: Ev, brokers: nowhere, acks: 1 }],
    [{ topic: "t", schema: Ev, brokers: nowhere, framing: "confluent" }],
    [{ topic: "t", schema: Ev, brokers: nowhere, recordEncoder: "fast" }],
  ])("PRODUCER_INVALID_OPTIONS for %j", (opts) => {
    const err = thrown(() => createProducer(opts as never));
    expect(err.code).toBe("PRODUCER_INVALID_OPTIONS");
  });

  it("PRODUCER_CLOSED after close, close is idempotent, status moves to closed", async () => {
    const p = createProducer({ topic: "t", schema: Ev, brokers: nowhere });
    expect(p.status).toBe("opening");
    const c1 = p.close();
    expect(p.status).toBe("closing");
    await Promise.all([c1, p.close(), p[Symbol.asyncDispose]()]);
    expect(p.status).toBe("closed");
    expect((await rejection(p.send({ user_id: "u", ts: 1 }))).code).toBe("PRODUCER_CLOSED");
    expect((await rejection(p.flush())).code).toBe("PRODUCER_CLOSED");
    expect((await rejection(p.ensureTopic({ partitions: 1 }))).code).toBe("PRODUCER_CLOSED");
  });

  it("rejects an invalid event with the SchemaError in 'reject' mode, before any I/O", async () => {
    const p = createProducer({ topic: "t", schema: Ev, brokers: nowhere });
    const err = await p.send({ user_id: 5 } as never).catch((e: unknown) => e);
    expect((err as SluiceError).code).toBe("SCHEMA_INVALID_EVENT");
    expect(p.bufferedBytes).toBe(0);
    await p.close();
  });

  it("PRODUCER_DELIVERY_TIMEOUT when Kafka is unreachable", async () => {
    const p = createProducer({
      topic: "t",
      schema: Ev,
      brokers: nowhere,
      deliveryTimeoutMs: 300,
    });
    const err = await rejection(p.send({ user_id: "u", ts: 1 }));
    expect(err.code).toBe("PRODUCER_DELIVERY_TIMEOUT");
    expect(err.retryable).toBe(true);
    await p.close();
  });

  it("recordEncoder: Sluice's encoder by default; PRODUCER_ENCODER_UNAVAILABLE when 'sluice' cannot be had", async () => {
    const p = createProducer({ topic: "t", schema: Ev, brokers: nowhere });
    expect(p.recordEncoder).toBe("sluice");
    await p.close();
    const k = createProducer({
      topic: "t",
      schema: Ev,
      brokers: nowhere,
      recordEncoder: "kafkajs",
    });
    expect(k.recordEncoder).toBe("kafkajs");
    await k.close();
    // a client that is not from the installed kafkajs (another copy, a wrapper)
    const foreign = {
      producer: () => ({ connect: async () => {}, disconnect: async () => {} }),
      admin: () => ({ connect: async () => {}, disconnect: async () => {} }),
    } as never;
    const auto = createProducer({ topic: "t", schema: Ev, kafka: foreign });
    expect(auto.recordEncoder).toBe("kafkajs");
    await auto.close();
    const err = thrown(() =>
      createProducer({ topic: "t", schema: Ev, kafka: foreign, recordEncoder: "sluice" }),
    );
    expect(err.code).toBe("PRODUCER_ENCODER_UNAVAILABLE");
    expect(err.message).toMatch(/another copy of kafkajs/);
  });
});
