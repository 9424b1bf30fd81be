// Sluice's record-batch encoder against kafkajs's own: the Produce request
// bodies must be byte for byte the same, for every compression and for the
// record shapes kafkajs accepts; and kafkajs's decoder must read them back.
import { createRequire } from "node:module";
import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { registerCompressionCodecs } from "../src/index.js";
import { crc32c } from "../src/internal/crc32c.js";
import {
  type CodecLike,
  encodeProduceRequest,
  type MessageLike,
  type ProduceArgs,
} from "../src/internal/record-batch.js";

const { CompressionCodecs, CompressionTypes } = kafkajs;
const require = createRequire(import.meta.url);
const produceRequests = require("kafkajs/src/protocol/requests/produce/index.js") as {
  protocol: (o: {
    version: number;
  }) => (a: unknown) => { request: { encode(): Promise<{ buffer: Buffer }> } };
};
const kafkajsCrc32C = require("kafkajs/src/protocol/recordBatch/crc32C/index.js") as (
  b: Buffer,
) => number;
const Long = require("kafkajs/src/utils/long.js") as { fromValue(v: unknown): unknown };
const Decoder = require("kafkajs/src/protocol/decoder.js") as new (b: Buffer) => unknown;
const RecordBatchDecoder = require("kafkajs/src/protocol/recordBatch/v0/decoder.js") as (
  d: unknown,
) => Promise<{
  firstSequence: number;
  producerId: string;
  records: Array<{
    key: Buffer | null;
    value: Buffer | null;
    timestamp: string;
    headers: Record<string, Buffer>;
  }>;
}>;

registerCompressionCodecs();
const lookupCodec = (t: number) => {
  const f = (CompressionCodecs as unknown as Record<number, (() => CodecLike) | undefined>)[t];
  return f ? f() : undefined;
};

async function kafkajsBody(args: ProduceArgs, version = 7): Promise<Buffer> {
  const { request } = produceRequests.protocol({ version })({ ...args });
  return (await request.encode()).buffer;
}

/** Deterministic values in [0, 1): a linear congruential sequence. */
function rng(seed: number) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

/** Sluice-shaped records: key, JSON value, content type + event time headers, event time stamp. */
function sluiceMessages(n: number, seed: number, t0 = Date.UTC(2026, 0, 1)): MessageLike[] {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const ts = t0 + Math.floor(rand() * 100_000) - 50_000; // out of order
    const value = JSON.stringify({
      user_id: `u${i}`,
      ts,
      pad: "x".repeat(Math.floor(rand() * 400)),
    });
    return {
      partition: 3,
      key: Buffer.from(`user-${Math.floor(rand() * 1000)}`),
      value: Buffer.from(value),
      headers: { "content-type": "application/json", "sluice-event-time": String(ts) },
      timestamp: String(ts),
    };
  });
}

function args(
  partitions: Array<{ partition: number; messages: MessageLike[]; firstSequence?: number }>,
  compression: number,
  extra: Partial<ProduceArgs> = {},
): ProduceArgs {
  return {
    topicData: [{ topic: "events", partitions }],
    acks: -1,
    timeout: 30000,
    compression,
    producerId: Long.fromValue(4711),
    producerEpoch: 3,
    ...extra,
  };
}

describe("record batch encoder", () => {
  it("CRC-32C matches the check value and kafkajs's implementation", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    const rand = rng(7);
    for (const len of [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099]) {
      const b = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
      expect(crc32c(b)).toBe(kafkajsCrc32C(b));
      if (len > 5) expect(crc32c(b, 3, len - 2)).toBe(kafkajsCrc32C(b.subarray(3, len - 2)));
    }
  });

  it.each([
    ["none", CompressionTypes.None],
    ["gzip", CompressionTypes.GZIP],
    ["snappy", CompressionTypes.Snappy],
    ["lz4", CompressionTypes.LZ4],
    ["zstd", CompressionTypes.ZSTD],
  ])("writes the same Produce request body as kafkajs (%s)", async (_name, compression) => {
    const a = args(
      [
        { partition: 0, messages: sluiceMessages(1, 1), firstSequence: 0 },
        { partition: 7, messages: sluiceMessages(200, 2), firstSequence: 123_456 },
        { partition: 11, messages: sluiceMessages(37, 3), firstSequence: 2 ** 31 - 10 },
      ],
      compression,
    );
    const ours = await encodeProduceRequest(a, lookupCodec);
    expect(ours).toBeInstanceOf(Buffer);
    expect(ours!.equals(await kafkajsBody(a))).toBe(true);
    // Produce v3 to v7 share the body layout
    expect(ours!.equals(await kafkajsBody(a, 3))).toBe(true);
  });

  it("covers the edges of kafkajs's record format byte for byte", async () => {
    const messages: MessageLike[] = [
      { key: null, value: Buffer.from("no key"), headers: {}, timestamp: "1767225600000" },
      { key: "strkey", value: "string value ünïcødé", timestamp: "1767225600001" },
      { key: Buffer.alloc(0), value: null, headers: { a: "1" }, timestamp: 1767225600002 },
      // deltas far beyond 32 bits, either way
      { key: "k", value: "old", timestamp: "1000", headers: { b: Buffer.from([0, 1, 2]) } },
      { key: "k", value: "future", timestamp: "99999999999999" },
      {
        key: "k",
        value: "multi",
        headers: { h: ["x", "yy"], ключ: "значение" },
        timestamp: "1767225600003",
      },
      { key: "k", value: "v".repeat(20_000), timestamp: "1767225600004" },
    ];
    for (const compression of [CompressionTypes.None, CompressionTypes.LZ4]) {
      const a = args([{ partition: 1, messages, firstSequence: 9 }], compression, {
        transactionalId: "tx-ä",
      });
      const ours = await encodeProduceRequest(a, lookupCodec);
      expect(ours!.equals(await kafkajsBody(a))).toBe(true);
      // non-idempotent defaults: no producer id, epoch, sequence, transactional id
      const plain: ProduceArgs = {
        topicData: [{ topic: "t", partitions: [{ partition: 0, messages }] }],
        compression,
      };
      const ours2 = await encodeProduceRequest(plain, lookupCodec);
      expect(ours2!.equals(await kafkajsBody({ ...plain, acks: -1, timeout: 30000 }))).toBe(true);
    }
  });

  it("kafkajs's decoder reads back every field", async () => {
    const messages = sluiceMessages(50, 9);
    const a = args([{ partition: 0, messages, firstSequence: 77 }], CompressionTypes.LZ4);
    const body = (await encodeProduceRequest(a, lookupCodec))!;
    // body: txid(2) acks(2) timeout(4) topics(4) topic(2+6) partitions(4) partition(4) size(4) batch
    const batch = body.subarray(2 + 2 + 4 + 4 + 2 + 6 + 4 + 4 + 4);
    const decoded = await RecordBatchDecoder(new Decoder(batch));
    expect(decoded.firstSequence).toBe(77);
    expect(String(decoded.producerId)).toBe("4711");
    expect(decoded.records).toHaveLength(50);
    decoded.records.forEach((r, i) => {
      const m = messages[i]!;
      expect(r.key!.equals(m.key as Buffer)).toBe(true);
      expect(r.value!.equals(m.value as Buffer)).toBe(true);
      expect(r.timestamp).toBe(m.timestamp);
      expect(r.headers["sluice-event-time"]!.toString()).toBe(m.timestamp);
      expect(r.headers["content-type"]!.toString()).toBe("application/json");
    });
  });

  it("answers undefined (kafkajs encodes) for what it does not cover", async () => {
    const bad: MessageLike[][] = [
      [{ key: "k", value: "v", headers: { h: null as unknown as string }, timestamp: "1" }],
      [{ key: "k", value: 42 as unknown as string, timestamp: "1" }],
      [{ key: "k", value: "v", timestamp: "1.5" }],
      [],
    ];
    for (const messages of bad) {
      const a = args([{ partition: 0, messages }], CompressionTypes.None);
      expect(await encodeProduceRequest(a, lookupCodec)).toBeUndefined();
    }
  });
});
