// Sluice's record-batch encoder on the real broker: what it writes reads back
// exactly as what kafkajs writes for the same events, the idempotent
// producer's sequence numbers stay valid over many requests, and kafkajs
// producers that are not Sluice's are left alone.
import { createRequire } from "node:module";
import net from "node:net";
import kafkajs, { type ISocketFactory } from "kafkajs";
import { describe, expect, it } from "vitest";
import { createProducer, registerCompressionCodecs } from "../src/index.js";
import { createKafkaAdapter } from "../src/internal/kafka-adapter.js";
import {
  brokers,
  kafkaClient,
  type ReadRecord,
  readAll,
  TestEvent,
  topicNamer,
} from "./helpers.js";

const { CompressionTypes, Kafka: KafkaClass, logLevel, Partitioners } = kafkajs;
const kafka = kafkaClient();
const require = createRequire(import.meta.url);
const Broker = require("kafkajs/src/broker/index.js") as { prototype: { produce: unknown } };
const topicName = topicNamer(kafka);

const byPosition = (a: ReadRecord, b: ReadRecord) =>
  a.partition - b.partition || Number(a.offset) - Number(b.offset);

describe("Sluice's record encoder on the broker", () => {
  it("reads back the same records as kafkajs's encoding, over many idempotent requests", async () => {
    const events = Array.from({ length: 3000 }, (_, seq) => ({
      user_id: `user-${(seq * 7919) % 113}`,
      seq,
      // out of order within a batch, and some far in the past
      ts: seq % 97 === 0 ? 86_400_000 + seq : Date.UTC(2026, 0, 1) + ((seq * 37) % 5000),
      pad: "é".repeat(seq % 40),
    }));
    const written: Record<string, ReadRecord[]> = {};
    for (const recordEncoder of ["auto", "kafkajs"] as const) {
      const topic = topicName(`enc_${recordEncoder}`);
      await using producer = createProducer({
        brokers,
        topic,
        schema: TestEvent,
        compression: "lz4",
        maxBatchMessages: 50,
        recordEncoder,
      });
      expect(producer.recordEncoder).toBe(recordEncoder === "auto" ? "sluice" : "kafkajs");
      await producer.ensureTopic({ partitions: 3 });
      const results = await Promise.all(events.map((e) => producer.send(e)));
      expect(new Set(results.map((r) => `${r.partition}/${r.offset}`)).size).toBe(events.length);
      written[recordEncoder] = (await readAll(kafka, topic, events.length)).sort(byPosition);
    }
    const ours = written.auto!;
    const theirs = written.kafkajs!;
    expect(ours).toHaveLength(events.length);
    expect(ours).toEqual(theirs);
    // each key's events in send order, each exactly once
    const seqs = ours.map((r) => JSON.parse(r.value).seq as number).sort((a, b) => a - b);
    expect(seqs).toEqual(events.map((e) => e.seq));
    const r0 = ours.find((r) => JSON.parse(r.value).seq === 97)!;
    expect(r0.timestamp).toBe(String(86_400_000 + 97));
    expect(r0.headers["sluice-event-time"]).toBe(String(86_400_000 + 97));
  });

  it("the adapter counts the requests Sluice encoded, for every compression", async () => {
    registerCompressionCodecs();
    for (const [name, type] of [
      ["none", CompressionTypes.None],
      ["gzip", CompressionTypes.GZIP],
      ["snappy", CompressionTypes.Snappy],
      ["lz4", CompressionTypes.LZ4],
      ["zstd", CompressionTypes.ZSTD],
    ] as const) {
      const topic = topicName(`adapter_${name}`);
      const adapter = createKafkaAdapter({
        brokers,
        clientId: "sluice-encoder-test",
        acks: -1,
        idempotent: true,
        requestTimeoutMs: 30_000,
        recordEncoder: "auto",
      });
      try {
        await adapter.createTopic({
          name: topic,
          partitions: 2,
          replicationFactor: 1,
          configs: {},
        });
        await adapter.connect();
        const messages = (p: number) =>
          Array.from({ length: 20 }, (_, i) => ({
            partition: p,
            key: Buffer.from(`k${i}`),
            value: Buffer.from(`v${p}-${i}`),
            headers: { h: `x${i}` },
            timestamp: String(1_700_000_000_000 + i),
          }));
        const acks = await adapter.send(
          [{ topic, messages: [...messages(0), ...messages(1)] }],
          type,
        );
        expect(acks.map((a) => a.partition).sort()).toEqual([0, 1]);
        expect(adapter.recordEncoder).toBe("sluice");
        expect(adapter.encodedRequests.sluice).toBe(1);
        expect(adapter.encodedRequests.kafkajs).toBe(0);
        const back = (await readAll(kafka, topic, 40, { settleMs: 300 })).sort(byPosition);
        expect(
          back.map((r) => `${r.partition}:${r.key}:${r.value}:${r.headers.h}:${r.timestamp}`),
        ).toEqual(
          [0, 1].flatMap((p) =>
            Array.from(
              { length: 20 },
              (_, i) => `${p}:k${i}:v${p}-${i}:x${i}:${1_700_000_000_000 + i}`,
            ),
          ),
        );
      } finally {
        await adapter.disconnect();
      }
    }
  });

  it("leaves the client passed in, kafkajs's classes and other producers as they were", async () => {
    const client = kafkaClient();
    const keysBefore = Reflect.ownKeys(client);
    const produceBefore = Broker.prototype.produce;
    const topic = topicName("shared_client");
    await using producer = createProducer({ kafka: client, topic, schema: TestEvent });
    expect(producer.recordEncoder).toBe("sluice");
    await producer.ensureTopic({ partitions: 1 });
    await producer.send({ user_id: "a", seq: 0, ts: 1_000 });
    expect(Reflect.ownKeys(client)).toEqual(keysBefore);
    expect(Broker.prototype.produce).toBe(produceBefore);

    // a plain kafkajs producer of the same client, in the same process
    const plain = client.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await plain.connect();
    try {
      await plain.send({
        topic,
        compression: CompressionTypes.GZIP,
        messages: [
          { key: "b", value: "plain", headers: { who: ["kafkajs", "again"] }, timestamp: "2000" },
        ],
      });
    } finally {
      await plain.disconnect();
    }
    const back = (await readAll(kafka, topic, 2, { settleMs: 300 })).sort(byPosition);
    expect(back.map((r) => [r.key, r.timestamp])).toEqual([
      ["a", "1000"],
      ["b", "2000"],
    ]);
    expect(back[1]!.headers.who).toBe("kafkajs");
  });

  it("a Produce response lost after the broker wrote the batch: the retry reuses its sequence numbers, every record once", async () => {
    // Sockets that drop the response to chosen Produce requests (the
    // connection fails as the response arrives, so the broker has written
    // the batch): kafkajs gives the sequence back and sends the same batch
    // again, which the idempotent broker must recognise as a duplicate.
    const dropNth = new Set([2, 5, 9]);
    let produceRequests = 0;
    let dropped = 0;
    const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
      const socket = net.connect({ host, port }, onConnect);
      const pending = new Set<number>();
      const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        // request: size, api key (0 = Produce), api version, correlation id
        if (Buffer.isBuffer(chunk) && chunk.length >= 12 && chunk.readInt16BE(4) === 0) {
          produceRequests++;
          if (dropNth.has(produceRequests)) pending.add(chunk.readInt32BE(8));
        }
        return write(chunk, ...rest);
      }) as typeof socket.write;
      const emit = socket.emit.bind(socket) as (e: string | symbol, ...a: unknown[]) => boolean;
      socket.emit = ((event: string | symbol, ...args: unknown[]) => {
        const data = args[0];
        // response: size, correlation id
        if (event === "data" && Buffer.isBuffer(data) && data.length >= 8) {
          if (pending.delete(data.readInt32BE(4))) {
            dropped++;
            socket.destroy(new Error("test: Produce response dropped"));
            return true;
          }
        }
        return emit(event, ...args);
      }) as typeof socket.emit;
      return socket;
    };
    const client = new KafkaClass({
      clientId: "sluice-lost-response-test",
      brokers,
      logLevel: logLevel.NOTHING,
      socketFactory,
    });
    const topic = topicName("lost_response");
    const events = Array.from({ length: 2000 }, (_, seq) => ({
      user_id: `user-${seq % 37}`,
      seq,
      ts: 1_700_000_000_000 + seq,
    }));
    {
      await using producer = createProducer({
        kafka: client,
        topic,
        schema: TestEvent,
        maxBatchMessages: 100,
        lingerMs: 0,
      });
      expect(producer.recordEncoder).toBe("sluice");
      await producer.ensureTopic({ partitions: 3 });
      const results = await Promise.all(events.map((e) => producer.send(e)));
      expect(new Set(results.map((r) => `${r.partition}/${r.offset}`)).size).toBe(events.length);
    }
    expect(dropped).toBe(dropNth.size);
    const back = (await readAll(kafka, topic, events.length)).sort(byPosition);
    expect(back).toHaveLength(events.length);
    const seqs = back.map((r) => JSON.parse(r.value).seq as number).sort((a, b) => a - b);
    expect(seqs).toEqual(events.map((e) => e.seq));
    // each key's events in send order, at consecutive offsets of its partition
    const lastSeq = new Map<string, number>();
    for (const r of back) {
      const { user_id, seq } = JSON.parse(r.value) as { user_id: string; seq: number };
      expect(seq).toBeGreaterThan(lastSeq.get(user_id) ?? -1);
      lastSeq.set(user_id, seq);
    }
  });
});
