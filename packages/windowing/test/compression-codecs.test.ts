import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { createJob } from "../src/index.js";

const schema = { decode: (bytes: Buffer) => JSON.parse(bytes.toString("utf8")) as unknown };

describe("createJob and compressed topics", () => {
  it("registers the lz4, snappy and zstd codecs, so a job can read what @sluice/producer writes", () => {
    const { CompressionCodecs, CompressionTypes } = kafkajs;
    const codecs = CompressionCodecs as Record<number, unknown>;
    const types = [CompressionTypes.LZ4, CompressionTypes.Snappy, CompressionTypes.ZSTD];
    for (const t of types) delete codecs[t];
    createJob({
      brokers: ["127.0.0.1:9092"],
      applicationId: "codecs",
      source: { topic: "t", schema },
      stateDir: "/tmp/sluice-codecs-test",
      handleSignals: false,
    });
    for (const t of types) expect(typeof codecs[t]).toBe("function");
  });
});
