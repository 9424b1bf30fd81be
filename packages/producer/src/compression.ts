/// <reference path="./internal/vendor.d.ts" />
import kafkajs from "kafkajs";
import * as lz4Module from "kafkajs-lz4";
import * as snappyModule from "kafkajs-snappy";
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

/**
 * Registers the snappy (`kafkajs-snappy`), lz4 (`kafkajs-lz4`) and zstd
 * (`zstd-napi`) codecs with kafkajs, process-wide. Idempotent. Producers call
 * it themselves; consumers of compressed topics call it once before consuming.
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
  const LZ4Codec = interopDefault<new () => { codec: () => unknown }>(lz4Module);
  const SnappyCodec = interopDefault<() => unknown>(snappyModule);
  const codecs = CompressionCodecs as Record<number, () => unknown>;
  codecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
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
