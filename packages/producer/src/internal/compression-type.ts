import kafkajs from "kafkajs";
import type { Compression } from "../compression.js";

const { CompressionTypes } = kafkajs;

/** kafkajs compression type for a Sluice compression name. */
export function toKafkaCompression(c: Compression): number {
  switch (c) {
    case "none":
      return CompressionTypes.None;
    case "gzip":
      return CompressionTypes.GZIP;
    case "snappy":
      return CompressionTypes.Snappy;
    case "lz4":
      return CompressionTypes.LZ4;
    case "zstd":
      return CompressionTypes.ZSTD;
  }
}
