import { describe, expect, it } from "vitest";
import { createJob } from "../src/index.js";

const schema = { decode: (bytes: Buffer) => JSON.parse(bytes.toString("utf8")) as unknown };
const base = {
  brokers: ["127.0.0.1:9092"],
  applicationId: "options",
  source: { topic: "t", schema },
  stateDir: "/tmp/sluice-options-test",
  handleSignals: false,
};

describe("createJob options", () => {
  it("accepts pipelineCommits as a boolean and rejects anything else with WINDOWING_INVALID_OPTIONS", () => {
    expect(() => createJob({ ...base, pipelineCommits: true })).not.toThrow();
    expect(() => createJob({ ...base, pipelineCommits: false })).not.toThrow();
    expect(() => createJob({ ...base, pipelineCommits: "yes" as unknown as boolean })).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
  });

  it("accepts transactionConcurrency from 1 to 64 and rejects anything else with WINDOWING_INVALID_OPTIONS", () => {
    for (const ok of [1, 12, 64]) {
      const job = createJob({ ...base, transactionConcurrency: ok });
      expect(job.options?.transactionConcurrency).toBe(ok);
    }
    expect(createJob(base).options?.transactionConcurrency).toBe(1);
    for (const bad of [0, -1, 1.5, 65, Number.NaN, "4"]) {
      expect(() =>
        createJob({ ...base, transactionConcurrency: bad as unknown as number }),
      ).toThrow(
        expect.objectContaining({
          code: "WINDOWING_INVALID_OPTIONS",
          message: expect.stringContaining("transactionConcurrency"),
        }),
      );
    }
  });

  it("transactionTimeoutMs: 10 s by default, durations from 1 s to 15 min, anything else WINDOWING_INVALID_OPTIONS", () => {
    expect(createJob(base).options?.transactionTimeoutMs).toBe(10_000);
    expect(createJob({ ...base, transactionTimeoutMs: "30s" }).options?.transactionTimeoutMs).toBe(
      30_000,
    );
    expect(createJob({ ...base, transactionTimeoutMs: 1_000 }).options?.transactionTimeoutMs).toBe(
      1_000,
    );
    for (const bad of [999, 900_001, -1, "soon"]) {
      expect(() => createJob({ ...base, transactionTimeoutMs: bad as number })).toThrow(
        expect.objectContaining({
          code: "WINDOWING_INVALID_OPTIONS",
          message: expect.stringContaining("transactionTimeoutMs"),
        }),
      );
    }
  });
});
