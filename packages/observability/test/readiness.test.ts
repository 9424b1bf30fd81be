import { channels, createReadiness, type Readiness } from "@sluice/observability";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { publish } from "./helpers.js";

let clock = 0;
let readiness: Readiness;
beforeEach(() => {
  clock = 1_000_000;
  readiness = createReadiness({ sinkFailureThreshold: "10s", now: () => clock });
});
afterEach(() => readiness.close());

describe("createReadiness", () => {
  it("is not ready until a job reports ready", () => {
    const first = readiness.check();
    expect(first.ok).toBe(false);
    expect(JSON.stringify(first.detail)).toContain("no job has reported ready yet");
    publish(channels.jobRebalance, { applicationId: "agg", assigned: [0, 1], revoked: [] });
    expect(readiness.check().ok).toBe(false);
    publish(channels.jobReady, { applicationId: "agg", ready: true });
    const ready = readiness.check();
    expect(ready.ok).toBe(true);
    expect(ready.detail).toMatchObject({ jobs: { agg: { ready: true, partitions: [0, 1] } } });
  });

  it("a rebalance that moves partitions makes the job not ready until it reports ready again", () => {
    publish(channels.jobRebalance, { applicationId: "agg", assigned: [0, 1], revoked: [] });
    publish(channels.jobReady, { applicationId: "agg", ready: true });
    publish(channels.jobRebalance, { applicationId: "agg", assigned: [2], revoked: [1] });
    expect(readiness.check().ok).toBe(false);
    publish(channels.jobReady, { applicationId: "agg", ready: true });
    expect(readiness.check()).toMatchObject({
      ok: true,
      detail: { jobs: { agg: { partitions: [0, 2] } } },
    });
    publish(channels.jobReady, { applicationId: "agg", ready: false });
    expect(readiness.check().ok).toBe(false);
  });

  it("every job seen must be ready", () => {
    publish(channels.jobReady, { applicationId: "a", ready: true });
    publish(channels.jobReady, { applicationId: "b", ready: false });
    expect(readiness.check().ok).toBe(false);
    publish(channels.jobReady, { applicationId: "b", ready: true });
    expect(readiness.check().ok).toBe(true);
  });

  it("a sink failing longer than the threshold makes it not ready; a successful batch makes it ready again", () => {
    publish(channels.jobReady, { applicationId: "agg", ready: true });
    const s = { sink: "redis", name: "live" };
    publish(channels.sinkBatch, {
      ...s,
      rows: 10,
      durationMs: 1,
      error: new Error("ECONNREFUSED"),
    });
    clock += 10_000;
    expect(readiness.check().ok).toBe(true); // at the threshold, not beyond
    publish(channels.sinkBatch, {
      ...s,
      rows: 10,
      durationMs: 1,
      error: new Error("ECONNREFUSED"),
    });
    clock += 1;
    const down = readiness.check();
    expect(down.ok).toBe(false);
    expect(JSON.stringify(down.detail)).toContain("sink redis:live has been failing for 10001 ms");
    publish(channels.sinkBatch, { ...s, rows: 10, durationMs: 1 });
    expect(readiness.check().ok).toBe(true);
  });

  it("retries count as failing too", () => {
    const r = createReadiness({ requireJob: false, sinkFailureThreshold: 500, now: () => clock });
    publish(channels.sinkRetry, {
      sink: "clickhouse",
      name: "events",
      attempt: 1,
      delayMs: 100,
      code: "X",
    });
    clock += 501;
    expect(r.check().ok).toBe(false);
    publish(channels.sinkBatch, { sink: "clickhouse", name: "events", rows: 1, durationMs: 1 });
    expect(r.check().ok).toBe(true);
    r.close();
  });

  it("requireJob: false is ready without any job", () => {
    const r = createReadiness({ requireJob: false });
    expect(r.check().ok).toBe(true);
    r.close();
  });

  it("check() after close throws OBSERVABILITY_READINESS_CLOSED; close is idempotent", async () => {
    await readiness.close();
    await readiness[Symbol.asyncDispose]();
    expect(readiness.status).toBe("closed");
    expect(() => readiness.check()).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_READINESS_CLOSED" }),
    );
  });

  it("validates options", () => {
    expect(() => createReadiness({ sinkFailureThreshold: "soon" })).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_INVALID_OPTIONS" }),
    );
    expect(() => createReadiness({ requireJob: "no" as never })).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_INVALID_OPTIONS" }),
    );
  });
});
