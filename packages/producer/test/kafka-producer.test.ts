import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { createKafkaProducer, ProducerError } from "../src/index.js";

const { Kafka, logLevel } = kafkajs;
const client = () =>
  new Kafka({
    clientId: "kafka-producer-test",
    brokers: ["127.0.0.1:1"],
    logLevel: logLevel.NOTHING,
  });

function thrown(fn: () => unknown): ProducerError {
  try {
    fn();
  } catch (err) {
    expect(ProducerError.isInstance(err)).toBe(true);
    return err as ProducerError;
  }
  throw new Error("expected a ProducerError");
}

describe("createKafkaProducer", () => {
  it("rejects invalid options with PRODUCER_INVALID_OPTIONS", () => {
    expect(thrown(() => createKafkaProducer(undefined as never)).code).toBe(
      "PRODUCER_INVALID_OPTIONS",
    );
    expect(thrown(() => createKafkaProducer({ kafka: {} as never })).code).toBe(
      "PRODUCER_INVALID_OPTIONS",
    );
    expect(thrown(() => createKafkaProducer({ kafka: client(), config: null as never })).code).toBe(
      "PRODUCER_INVALID_OPTIONS",
    );
    const bad = thrown(() =>
      createKafkaProducer({ kafka: client(), recordEncoder: "fast" as never }),
    );
    expect(bad.code).toBe("PRODUCER_INVALID_OPTIONS");
    expect(bad.message).toMatch(/recordEncoder/);
  });

  it("uses Sluice's encoder for a kafkajs 2.2.4 client, transactional or not, and kafkajs's on request", () => {
    const kafka = client();
    const keys = Reflect.ownKeys(kafka);
    const tx = createKafkaProducer({
      kafka,
      config: { transactionalId: "t", idempotent: true, maxInFlightRequests: 1 },
    });
    expect(tx.recordEncoder).toBe("sluice");
    expect(tx.recordEncoderReason).toBeUndefined();
    expect(tx.encodedRequests).toEqual({ sluice: 0, kafkajs: 0 });
    expect(typeof tx.transaction).toBe("function");
    expect(createKafkaProducer({ kafka }).recordEncoder).toBe("sluice");
    const plain = createKafkaProducer({ kafka, recordEncoder: "kafkajs" });
    expect(plain.recordEncoder).toBe("kafkajs");
    expect(plain.recordEncoderReason).toMatch(/kafkajs/);
    // the client passed in is left as it was
    expect(Reflect.ownKeys(kafka)).toEqual(keys);
  });

  it("groups messages by partition only with Sluice's encoder and a partitioner that honours `partition`", () => {
    const kafka = client();
    expect(createKafkaProducer({ kafka }).groupsByPartition).toBe(true);
    expect(
      createKafkaProducer({
        kafka,
        config: { createPartitioner: kafkajs.Partitioners.LegacyPartitioner },
      }).groupsByPartition,
    ).toBe(true);
    // a custom partitioner may not return the message's partition
    const custom = createKafkaProducer({
      kafka,
      config: { createPartitioner: () => () => 0 },
    });
    expect(custom.recordEncoder).toBe("sluice");
    expect(custom.groupsByPartition).toBe(false);
    expect(createKafkaProducer({ kafka, recordEncoder: "kafkajs" }).groupsByPartition).toBe(false);
  });

  it("caches coordinator lookups of transactional producers only, whichever encoder writes the records", () => {
    const kafka = client();
    const keys = Reflect.ownKeys(kafka);
    const config = { transactionalId: "t", idempotent: true, maxInFlightRequests: 1 };
    const tx = createKafkaProducer({ kafka, config });
    expect(tx.coordinatorLookups).toEqual({ sent: 0, cached: 0 });
    // with kafkajs's encoder the producer is still made on its own cluster,
    // and reports its encoder as before
    const kafkajsEncoded = createKafkaProducer({ kafka, config, recordEncoder: "kafkajs" });
    expect(kafkajsEncoded.coordinatorLookups).toEqual({ sent: 0, cached: 0 });
    expect(kafkajsEncoded.recordEncoder).toBe("kafkajs");
    expect(kafkajsEncoded.recordEncoderReason).toBe("recordEncoder is 'kafkajs'");
    expect(kafkajsEncoded.encodedRequests).toEqual({ sluice: 0, kafkajs: 0 });
    expect(kafkajsEncoded.groupsByPartition).toBe(false);
    expect(createKafkaProducer({ kafka, config: { idempotent: true } }).coordinatorLookups).toBe(
      undefined,
    );
    expect(createKafkaProducer({ kafka, recordEncoder: "kafkajs" }).coordinatorLookups).toBe(
      undefined,
    );
    // a client from another kafkajs copy: no private cluster, no cache
    const wrapper = { producer: (c?: kafkajs.ProducerConfig) => kafka.producer(c) } as never;
    expect(createKafkaProducer({ kafka: wrapper, config }).coordinatorLookups).toBe(undefined);
    expect(Reflect.ownKeys(kafka)).toEqual(keys);
  });

  it("falls back to kafkajs for a client it does not know, or throws PRODUCER_ENCODER_UNAVAILABLE when 'sluice' is required", () => {
    const real = client();
    // a KafkaJS-compatible wrapper, not an instance of the pinned kafkajs
    const wrapper = { producer: (c?: kafkajs.ProducerConfig) => real.producer(c) } as never;
    const made = createKafkaProducer({ kafka: wrapper, config: { idempotent: true } });
    expect(made.recordEncoder).toBe("kafkajs");
    expect(made.recordEncoderReason).toMatch(/another copy of kafkajs/);
    const err = thrown(() => createKafkaProducer({ kafka: wrapper, recordEncoder: "sluice" }));
    expect(err.code).toBe("PRODUCER_ENCODER_UNAVAILABLE");
    expect(err.message).toMatch(/another copy of kafkajs/);
  });
});
