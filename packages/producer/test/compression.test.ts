import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { registerCompressionCodecs } from "../src/index.js";

const { CompressionCodecs, CompressionTypes } = kafkajs;

type Codec = {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
};

function codec(type: number): Codec {
  registerCompressionCodecs();
  return (CompressionCodecs as unknown as Record<number, () => Codec>)[type]!();
}

describe("registered compression codecs", () => {
  const payload = Buffer.from(
    JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ user_id: `u${i}`, page: "/home" }))),
  );

  it.each([
    ["lz4", CompressionTypes.LZ4],
    ["snappy", CompressionTypes.Snappy],
    ["zstd", CompressionTypes.ZSTD],
  ] as const)(
    "%s round-trips and decompresses into a buffer of the batch's own size",
    async (_, type) => {
      const c = codec(type);
      const compressed = await c.compress({ buffer: payload });
      const back = await c.decompress(compressed);
      expect(back.equals(payload)).toBe(true);
      // kafkajs slices every record out of this buffer, and a record a job keeps
      // pins all of it: a codec that decodes into a fixed 4 MiB block made
      // consumers of small batches grow by gigabytes.
      expect(back.buffer.byteLength).toBeLessThan(payload.length * 2 + 8192);
    },
  );

  it("lz4 decoding allocates in proportion to the batch, not a fixed block per call", async () => {
    // The codec used before (lz4 0.6) allocated a zeroed 4 MiB block on every
    // decode: 100 small batches left ~400 MB of garbage that V8 did not
    // collect in time, and a job's consumers of small batches grew to 20 GB.
    const c = codec(CompressionTypes.LZ4);
    const compressed = await c.compress({ buffer: payload });
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 100; i++) await c.decompress(compressed);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  });

  it("lz4 writes the frame Kafka's clients read: magic number, independent blocks, no checksums", async () => {
    const frame = await codec(CompressionTypes.LZ4).compress({ buffer: payload });
    expect(frame.readUInt32LE(0)).toBe(0x184d2204);
    const flg = frame[4]!;
    expect(flg >> 6).toBe(1); // version 01
    expect(flg & 0x20).toBe(0x20); // block independence
    expect(flg & 0x10).toBe(0); // no block checksums
    expect(flg & 0x04).toBe(0); // no content checksum
  });

  it("lz4 rejects a corrupt frame with an error instead of returning garbage", async () => {
    const frame = await codec(CompressionTypes.LZ4).compress({ buffer: payload });
    const corrupt = Buffer.from(frame);
    corrupt.writeUInt32LE(0xdeadbeef, 0);
    await expect(codec(CompressionTypes.LZ4).decompress(corrupt)).rejects.toThrow();
  });
});
