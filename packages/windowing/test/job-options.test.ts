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
});
