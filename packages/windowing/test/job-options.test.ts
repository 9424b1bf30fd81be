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
});
