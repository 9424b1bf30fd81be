/// <reference path="./internal/vendor.d.ts" />
import kafkajs from "kafkajs";
import * as snappyModule from "kafkajs-snappy";
import * as lz4 from "lz4-napi";
import * as zstd from "zstd-napi";
import { interopDefault } from "./internal/interop.js";

const { CompressionCodecs, CompressionTypes } = kafkajs;

/**
 * Compression of produced batches.
 *
 * @since 0.1.0
 */
export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

let registered = false;

/** Independent blocks, no checksums: the frame Kafka's Java client writes. */
const LZ4_FRAME = { contentChecksum: false, blockChecksums: false };

/**
 * Registers the snappy (`kafkajs-snappy`), lz4 (`lz4-napi`, LZ4 frame format
 * as Kafka's clients write it) and zstd (`zstd-napi`) codecs with kafkajs,
 * process-wide. Idempotent. Producers call it themselves; consumers of
 * compressed topics call it once before consuming.
 *
 * Every codec returns a buffer of exactly the decompressed size, so the
 * records kafkajs slices out of it pin no more memory than the batch holds.
 *
 * @returns nothing
 * @example
 * ```ts
 * import { registerCompressionCodecs } from '@sluice/producer';
 * registerCompressionCodecs(); // before kafka.consumer(...).run()
 * ```
 * @since 0.1.0
 */
export function registerCompressionCodecs(): void {
  if (registered) return;
  const SnappyCodec = interopDefault<() => unknown>(snappyModule);
  const codecs = CompressionCodecs as Record<number, () => unknown>;
  // Synchronous calls: a Kafka batch compresses in well under a millisecond,
  // less than the cost of a thread-pool round trip; errors still reject.
  codecs[CompressionTypes.LZ4] = () => ({
    async compress(encoder: { buffer: Buffer }) {
      return lz4.compressFrameSync(encoder.buffer, LZ4_FRAME);
    },
    async decompress(buffer: Buffer) {
      return lz4.decompressFrameSync(buffer);
    },
  });
  codecs[CompressionTypes.Snappy] = SnappyCodec;
  codecs[CompressionTypes.ZSTD] = () => ({
    async compress(encoder: { buffer: Buffer }) {
      return zstd.compress(encoder.buffer);
    },
    async decompress(buffer: Buffer) {
      return zstd.decompress(buffer);
    },
  });
  registered = true;
}
