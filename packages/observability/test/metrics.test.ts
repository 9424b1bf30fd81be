import diagnostics_channel from "node:diagnostics_channel";
import { channels, createMetrics, type Metrics, metricCatalog } from "@sluice/observability";
import { collectDefaultMetrics, register as globalRegistry, Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { publish, sample, samples } from "./helpers.js";

let registry: Registry;
let metrics: Metrics;
let clock = 1_700_000_000_000;

beforeEach(() => {
  registry = new Registry();
  clock = 1_700_000_000_000;
  metrics = createMetrics({ registry, now: () => clock });
});
afterEach(async () => {
  await metrics.close();
});

describe("createMetrics", () => {
  it("registers every catalog metric in the given registry and none in the global one", () => {
    const before = globalRegistry.getMetricsAsArray().length;
    expect(metrics.names).toEqual(metricCatalog.map((m) => `sluice_${m.name}`));
    for (const name of metrics.names) expect(registry.getSingleMetric(name)).toBeDefined();
    expect(globalRegistry.getMetricsAsArray().length).toBe(before);
    expect(globalRegistry.getSingleMetric("sluice_producer_events_total")).toBeUndefined();
  });

  it("applies the prefix", async () => {
    const other = new Registry();
    const m = createMetrics({ registry: other, prefix: "app_" });
    expect(other.getSingleMetric("app_sink_rows_total")).toBeDefined();
    expect(other.getSingleMetric("sluice_sink_rows_total")).toBeUndefined();
    await m.close();
  });

  it("producer batch: events, bytes, batch size, latency on success; errors on failure", async () => {
    publish(channels.producerBatch, { topic: "events", messages: 10, bytes: 1000, durationMs: 4 });
    publish(channels.producerBatch, { topic: "events", messages: 5, bytes: 600, durationMs: 20 });
    publish(channels.producerBatch, {
      topic: "events",
      messages: 7,
      bytes: 700,
      durationMs: 3000,
      error: Object.assign(new Error("boom"), { code: "PRODUCER_SEND_FAILED" }),
    });
    const t = { topic: "events" };
    expect(await sample(registry, "sluice_producer_events_total", t)).toBe(15);
    expect(await sample(registry, "sluice_producer_bytes_total", t)).toBe(1600);
    expect(
      await sample(registry, "sluice_producer_batch_size", t, "sluice_producer_batch_size_count"),
    ).toBe(2);
    expect(
      await sample(registry, "sluice_producer_batch_size", t, "sluice_producer_batch_size_sum"),
    ).toBe(15);
    expect(
      await sample(
        registry,
        "sluice_producer_batch_size",
        { ...t, le: 5 },
        "sluice_producer_batch_size_bucket",
      ),
    ).toBe(1);
    expect(
      await sample(
        registry,
        "sluice_producer_send_duration_seconds",
        t,
        "sluice_producer_send_duration_seconds_count",
      ),
    ).toBe(3);
    expect(
      await sample(
        registry,
        "sluice_producer_send_duration_seconds",
        t,
        "sluice_producer_send_duration_seconds_sum",
      ),
    ).toBeCloseTo(3.024, 9);
    expect(
      await sample(registry, "sluice_producer_send_errors_total", {
        topic: "events",
        code: "PRODUCER_SEND_FAILED",
      }),
    ).toBe(1);
    expect(await sample(registry, "sluice_producer_failed_events_total", t)).toBe(7);
  });

  it("producer invalid: counts by code, DLQ only when dead-lettered", async () => {
    publish(channels.producerInvalid, { topic: "events", code: "SCHEMA_INVALID_EVENT", dlq: true });
    publish(channels.producerInvalid, {
      topic: "events",
      code: "SCHEMA_INVALID_EVENT",
      dlq: false,
    });
    publish(channels.producerInvalid, {
      topic: "events",
      code: "SCHEMA_EVENT_TOO_LARGE",
      dlq: true,
    });
    expect(
      await sample(registry, "sluice_producer_invalid_events_total", {
        topic: "events",
        code: "SCHEMA_INVALID_EVENT",
      }),
    ).toBe(2);
    expect(
      await sample(registry, "sluice_producer_invalid_events_total", {
        topic: "events",
        code: "SCHEMA_EVENT_TOO_LARGE",
      }),
    ).toBe(1);
    expect(await sample(registry, "sluice_producer_dlq_events_total", { topic: "events" })).toBe(2);
  });

  it("job records, lag, late, dlq, windows", async () => {
    const app = { applicationId: "agg" };
    publish(channels.jobRecords, { ...app, topic: "events", partition: 0, count: 100 });
    publish(channels.jobRecords, { ...app, topic: "events", partition: 0, count: 50 });
    publish(channels.jobRecords, { ...app, topic: "events", partition: 3, count: 1 });
    publish(channels.jobLag, { ...app, topic: "events", partition: 0, lag: 42 });
    publish(channels.jobLag, { ...app, topic: "events", partition: 0, lag: 7 });
    publish(channels.jobLate, { ...app, count: 3 });
    publish(channels.jobLate, { ...app, count: 2 });
    publish(channels.jobDlq, { ...app, code: "SCHEMA_DECODE_FAILED", count: 4 });
    publish(channels.jobWindows, { ...app, open: 12, closed: 3 });
    publish(channels.jobWindows, { ...app, open: 9, closed: 5 });
    const a = { application_id: "agg" };
    expect(
      await sample(registry, "sluice_consumer_records_total", {
        ...a,
        topic: "events",
        partition: 0,
      }),
    ).toBe(150);
    expect(
      await sample(registry, "sluice_consumer_records_total", {
        ...a,
        topic: "events",
        partition: 3,
      }),
    ).toBe(1);
    expect(
      await sample(registry, "sluice_consumer_lag", { ...a, topic: "events", partition: 0 }),
    ).toBe(7);
    expect(await sample(registry, "sluice_windowing_late_records_total", a)).toBe(5);
    expect(
      await sample(registry, "sluice_job_dlq_records_total", {
        ...a,
        code: "SCHEMA_DECODE_FAILED",
      }),
    ).toBe(4);
    expect(await sample(registry, "sluice_windowing_open_windows", a)).toBe(9);
    expect(await sample(registry, "sluice_windowing_closed_windows_total", a)).toBe(8);
  });

  it("stream time and its lag behind the injected wall clock", async () => {
    publish(channels.jobStreamTime, {
      applicationId: "agg",
      partition: 1,
      streamTime: clock - 30_000,
    });
    clock += 15_000;
    const l = { application_id: "agg", partition: 1 };
    expect(await sample(registry, "sluice_windowing_stream_time_seconds", l)).toBe(
      (1_700_000_000_000 - 30_000) / 1000,
    );
    expect(await sample(registry, "sluice_windowing_stream_time_lag_seconds", l)).toBe(45);
  });

  it("checkpoint, commit and restore durations; failures counted", async () => {
    const app = { applicationId: "agg" };
    publish(channels.jobCheckpoint, { ...app, durationMs: 20, partitions: 4 });
    publish(channels.jobCheckpoint, {
      ...app,
      durationMs: 5,
      partitions: 4,
      error: new Error("disk full"),
    });
    publish(channels.jobCommit, { ...app, durationMs: 8 });
    publish(channels.jobCommit, { ...app, durationMs: 8, error: "REBALANCE_IN_PROGRESS" });
    publish(channels.jobRestore, {
      ...app,
      store: "counts",
      partition: 2,
      records: 1234,
      durationMs: 2500,
    });
    const a = { application_id: "agg" };
    expect(
      await sample(
        registry,
        "sluice_job_checkpoint_duration_seconds",
        a,
        "sluice_job_checkpoint_duration_seconds_count",
      ),
    ).toBe(1);
    expect(
      await sample(
        registry,
        "sluice_job_checkpoint_duration_seconds",
        a,
        "sluice_job_checkpoint_duration_seconds_sum",
      ),
    ).toBeCloseTo(0.02, 9);
    expect(await sample(registry, "sluice_job_checkpoint_failures_total", a)).toBe(1);
    expect(
      await sample(
        registry,
        "sluice_job_commit_duration_seconds",
        a,
        "sluice_job_commit_duration_seconds_count",
      ),
    ).toBe(1);
    expect(await sample(registry, "sluice_job_commit_failures_total", a)).toBe(1);
    const s = { ...a, store: "counts" };
    expect(await sample(registry, "sluice_job_restored_records_total", s)).toBe(1234);
    expect(
      await sample(
        registry,
        "sluice_job_restore_duration_seconds",
        s,
        "sluice_job_restore_duration_seconds_sum",
      ),
    ).toBe(2.5);
  });

  it("refused commits: counted by application and reason, once per commit; rejects unknown reasons", async () => {
    publish(channels.jobCommitRefused, {
      applicationId: "agg",
      reason: "generation-over",
      partitions: [0, 3],
    });
    publish(channels.jobCommitRefused, {
      applicationId: "agg",
      reason: "generation-over",
      partitions: [1],
    });
    publish(channels.jobCommitRefused, {
      applicationId: "agg",
      reason: "producer-fenced",
      partitions: [0, 1, 2],
    });
    publish(channels.jobCommitRefused, {
      applicationId: "other",
      reason: "producer-fenced",
      partitions: [4],
    });
    const refused = (application_id: string, reason: string) =>
      sample(registry, "sluice_job_commits_refused_total", { application_id, reason });
    expect(await refused("agg", "generation-over")).toBe(2);
    expect(await refused("agg", "producer-fenced")).toBe(1);
    expect(await refused("other", "producer-fenced")).toBe(1);
    publish(channels.jobCommitRefused, {
      applicationId: "agg",
      reason: "timeout",
      partitions: [0],
    });
    publish(channels.jobCommitRefused, { applicationId: "agg", partitions: [0] });
    expect(await samples(registry, "sluice_job_commits_refused_total")).toHaveLength(3);
    expect(
      await sample(registry, "sluice_observability_dropped_messages_total", {
        channel: channels.jobCommitRefused,
      }),
    ).toBe(2);
  });

  it("rebalance: counts, tracks assigned partitions, drops per-partition gauges of revoked ones", async () => {
    const app = { applicationId: "agg" };
    publish(channels.jobRebalance, { ...app, assigned: [0, 1, 2], revoked: [] });
    publish(channels.jobLag, { ...app, topic: "events", partition: 2, lag: 9 });
    publish(channels.jobStreamTime, { ...app, partition: 2, streamTime: clock });
    publish(channels.jobRebalance, { ...app, assigned: [5], revoked: [2] });
    const a = { application_id: "agg" };
    expect(await sample(registry, "sluice_job_rebalances_total", a)).toBe(2);
    expect(await sample(registry, "sluice_job_assigned_partitions", a)).toBe(3);
    expect(await samples(registry, "sluice_consumer_lag")).toEqual([]);
    expect(await samples(registry, "sluice_windowing_stream_time_seconds")).toEqual([]);
    expect(await samples(registry, "sluice_windowing_stream_time_lag_seconds")).toEqual([]);
    publish(channels.jobReady, { ...app, ready: true });
    expect(await sample(registry, "sluice_job_ready", a)).toBe(1);
    publish(channels.jobReady, { ...app, ready: false });
    expect(await sample(registry, "sluice_job_ready", a)).toBe(0);
  });

  it("workers: counts member events by kind and tracks running members; rejects unknown events", async () => {
    publish(channels.jobWorkers, { event: "spawn", member: 0, pid: 11, incarnation: 0 });
    publish(channels.jobWorkers, { event: "spawn", member: 1, pid: 12, incarnation: 0 });
    publish(channels.jobWorkers, { event: "ready", member: 0 });
    expect(await sample(registry, "sluice_job_workers_running", {})).toBe(2);
    publish(channels.jobWorkers, { event: "exit", member: 1, code: null, signal: "SIGKILL" });
    publish(channels.jobWorkers, { event: "restart", member: 1, delayMs: 100 });
    expect(await sample(registry, "sluice_job_workers_running", {})).toBe(1);
    publish(channels.jobWorkers, { event: "spawn", member: 1, pid: 13, incarnation: 1 });
    expect(await sample(registry, "sluice_job_workers_running", {})).toBe(2);
    expect(await sample(registry, "sluice_job_worker_events_total", { event: "spawn" })).toBe(3);
    expect(await sample(registry, "sluice_job_worker_events_total", { event: "restart" })).toBe(1);
    publish(channels.jobWorkers, { event: "exploded", member: 0 });
    publish(channels.jobWorkers, { event: "exit", member: -1 });
    expect(await samples(registry, "sluice_job_worker_events_total")).toHaveLength(4);
    expect(await sample(registry, "sluice_job_workers_running", {})).toBe(2);
    expect(
      await sample(registry, "sluice_observability_dropped_messages_total", {
        channel: channels.jobWorkers,
      }),
    ).toBe(2);
  });

  it("state stats: gauges, cumulative cache counters turned into increases, hit ratio", async () => {
    publish(channels.stateStats, {
      store: "counts",
      partition: 0,
      keys: 10,
      bytes: 999,
      cacheHits: 30,
      cacheMisses: 10,
    });
    publish(channels.stateStats, {
      store: "counts",
      partition: 0,
      keys: 12,
      bytes: 1200,
      cacheHits: 50,
      cacheMisses: 10,
    });
    publish(channels.stateStats, {
      store: "counts",
      partition: 1,
      keys: 1,
      bytes: 10,
      cacheHits: 0,
      cacheMisses: 40,
    });
    publish(channels.stateStats, {
      store: "sessions",
      keys: 3,
      bytes: 30,
      cacheHits: 1,
      cacheMisses: 1,
    });
    expect(await sample(registry, "sluice_state_keys", { store: "counts", partition: 0 })).toBe(12);
    expect(await sample(registry, "sluice_state_bytes", { store: "counts", partition: 0 })).toBe(
      1200,
    );
    expect(
      await sample(registry, "sluice_state_keys", { store: "sessions", partition: "all" }),
    ).toBe(3);
    expect(await sample(registry, "sluice_state_cache_hits_total", { store: "counts" })).toBe(50);
    expect(await sample(registry, "sluice_state_cache_misses_total", { store: "counts" })).toBe(50);
    expect(await sample(registry, "sluice_state_cache_hit_ratio", { store: "counts" })).toBe(0.5);
    // reopened store: counters restart from zero, the increase is the new value
    publish(channels.stateStats, {
      store: "counts",
      partition: 0,
      keys: 12,
      bytes: 1200,
      cacheHits: 5,
      cacheMisses: 0,
    });
    expect(await sample(registry, "sluice_state_cache_hits_total", { store: "counts" })).toBe(55);
  });

  it("sink batch, retry, buffer, dlq and failing time", async () => {
    const s = { sink: "clickhouse", name: "window_results" };
    publish(channels.sinkBatch, { ...s, rows: 500, bytes: 20_000, durationMs: 40 });
    publish(channels.sinkBatch, { ...s, rows: 100, durationMs: 10 });
    publish(channels.sinkBatch, {
      ...s,
      rows: 80,
      durationMs: 5000,
      error: "ECONNREFUSED", // sinks publish the classified error code
    });
    clock += 12_000;
    publish(channels.sinkRetry, { ...s, attempt: 1, delayMs: 100, code: "SINK_UNAVAILABLE" });
    publish(channels.sinkRetry, { ...s, attempt: 2, delayMs: 200, code: "SINK_UNAVAILABLE" });
    publish(channels.sinkBuffer, { ...s, buffered: 10_000, backpressure: true });
    publish(channels.sinkBuffer, { ...s, buffered: 10_001, backpressure: true });
    publish(channels.sinkBuffer, { ...s, buffered: 10, backpressure: false });
    publish(channels.sinkBuffer, { ...s, buffered: 10_000, backpressure: true });
    publish(channels.sinkDlq, { ...s, count: 3, code: "SINK_REJECTED" });
    expect(await sample(registry, "sluice_sink_rows_total", s)).toBe(600);
    expect(await sample(registry, "sluice_sink_bytes_total", s)).toBe(20_000);
    expect(
      await sample(registry, "sluice_sink_failures_total", { ...s, code: "ECONNREFUSED" }),
    ).toBe(1);
    expect(await sample(registry, "sluice_sink_failed_rows_total", s)).toBe(80);
    expect(
      await sample(
        registry,
        "sluice_sink_batch_duration_seconds",
        s,
        "sluice_sink_batch_duration_seconds_count",
      ),
    ).toBe(3);
    expect(await sample(registry, "sluice_sink_failing_seconds", s)).toBe(12);
    expect(
      await sample(registry, "sluice_sink_retries_total", { ...s, code: "SINK_UNAVAILABLE" }),
    ).toBe(2);
    expect(await sample(registry, "sluice_sink_buffered_records", s)).toBe(10_000);
    expect(await sample(registry, "sluice_sink_backpressure", s)).toBe(1);
    expect(await sample(registry, "sluice_sink_backpressure_pauses_total", s)).toBe(2);
    expect(
      await sample(registry, "sluice_sink_dlq_records_total", { ...s, code: "SINK_REJECTED" }),
    ).toBe(3);
    publish(channels.sinkBatch, { ...s, rows: 1, durationMs: 1 });
    expect(await sample(registry, "sluice_sink_failing_seconds", s)).toBe(0);
  });

  it("ignores malformed messages without throwing into the publisher, and counts them", async () => {
    expect(() =>
      publish(channels.jobRecords, { applicationId: "agg", topic: "t", partition: 0, count: "3" }),
    ).not.toThrow();
    expect(() => publish(channels.sinkBatch, null)).not.toThrow();
    expect(() => publish(channels.jobReady, { applicationId: "agg", ready: "yes" })).not.toThrow();
    publish(channels.jobLag, { applicationId: "agg", topic: "t", partition: 0, lag: -1 });
    expect(await samples(registry, "sluice_consumer_records_total")).toEqual([]);
    expect(
      await sample(registry, "sluice_observability_dropped_messages_total", {
        channel: channels.jobRecords,
      }),
    ).toBe(1);
    expect(
      await sample(registry, "sluice_observability_dropped_messages_total", {
        channel: channels.sinkBatch,
      }),
    ).toBe(1);
    expect(
      await sample(registry, "sluice_observability_dropped_messages_total", {
        channel: channels.jobReady,
      }),
    ).toBe(1);
    expect(
      await sample(registry, "sluice_observability_dropped_messages_total", {
        channel: channels.jobLag,
      }),
    ).toBe(1);
  });

  it("bounds label cardinality: new values past maxLabelValues collapse into __other__", async () => {
    const r = new Registry();
    await metrics.close();
    metrics = createMetrics({ registry: r, maxLabelValues: 3 });
    for (let i = 0; i < 10; i++) {
      publish(channels.producerBatch, {
        topic: `topic-${i}`,
        messages: 1,
        bytes: 1,
        durationMs: 1,
      });
    }
    publish(channels.producerBatch, { topic: "topic-0", messages: 1, bytes: 1, durationMs: 1 });
    publish(channels.producerBatch, {
      topic: "x".repeat(500),
      messages: 1,
      bytes: 1,
      durationMs: 1,
    });
    const values = await samples(r, "sluice_producer_events_total");
    expect(values.map((v) => v.labels.topic).sort()).toEqual([
      "__other__",
      "topic-0",
      "topic-1",
      "topic-2",
    ]);
    expect(values.find((v) => v.labels.topic === "__other__")?.value).toBe(8);
    expect(values.find((v) => v.labels.topic === "topic-0")?.value).toBe(2);
    // partitions are bounded by Kafka, not by maxLabelValues
    for (let p = 0; p < 200; p++) {
      publish(channels.jobRecords, {
        applicationId: "a",
        topic: "topic-0",
        partition: p,
        count: 1,
      });
    }
    const parts = await samples(r, "sluice_consumer_records_total");
    expect(parts).toHaveLength(200);
    expect(parts.some((v) => v.labels.partition === "__other__")).toBe(false);
    // free-form error messages never become labels
    publish(channels.sinkBatch, {
      sink: "redis",
      name: "n",
      rows: 1,
      durationMs: 1,
      error: new Error("user 42 failed"),
    });
    publish(channels.producerBatch, {
      topic: "topic-1",
      messages: 1,
      bytes: 1,
      durationMs: 1,
      error: { code: "has spaces in it" },
    });
    expect(
      (await samples(r, "sluice_producer_send_errors_total")).map((v) => v.labels.code),
    ).toEqual(["unknown"]);
  });

  it("reset() zeroes values; close() unsubscribes, unregisters and is idempotent; reset after close throws", async () => {
    publish(channels.jobLate, { applicationId: "agg", count: 3 });
    metrics.reset();
    expect(await samples(registry, "sluice_windowing_late_records_total")).toEqual([]);
    await metrics.close();
    await metrics.close();
    expect(metrics.status).toBe("closed");
    expect(registry.getMetricsAsArray()).toEqual([]);
    expect(diagnostics_channel.channel(channels.jobLate).hasSubscribers).toBe(false);
    expect(() => metrics.reset()).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_METRICS_CLOSED" }),
    );
    // the same registry can host a fresh set after close
    const again = createMetrics({ registry });
    publish(channels.jobLate, { applicationId: "agg", count: 2 });
    expect(
      await sample(registry, "sluice_windowing_late_records_total", { application_id: "agg" }),
    ).toBe(2);
    await again[Symbol.asyncDispose]();
  });

  it("defaultMetrics colliding with the app's own default metrics fails cleanly", async () => {
    const r = new Registry();
    collectDefaultMetrics({ register: r, prefix: "sluice_" });
    const before = r.getMetricsAsArray().length;
    expect(() => createMetrics({ registry: r, defaultMetrics: true })).toThrowError(
      expect.objectContaining({ code: "OBSERVABILITY_DUPLICATE_METRICS" }),
    );
    expect(r.getMetricsAsArray().length).toBe(before);
    expect(r.getSingleMetric("sluice_sink_rows_total")).toBeUndefined();
    // and nothing is left subscribed
    const fresh = new Registry();
    const m = createMetrics({ registry: fresh });
    await m.close();
    expect(diagnostics_channel.channel(channels.sinkBatch).hasSubscribers).toBe(
      // the beforeEach handle is still open
      true,
    );
    await metrics.close();
    expect(diagnostics_channel.channel(channels.sinkBatch).hasSubscribers).toBe(false);
  });

  it("defaultMetrics: true adds process metrics and close() removes them too", async () => {
    const r = new Registry();
    const m = createMetrics({ registry: r, prefix: "p_", defaultMetrics: true });
    expect(r.getSingleMetric("p_process_cpu_user_seconds_total")).toBeDefined();
    await m.close();
    expect(r.getMetricsAsArray()).toEqual([]);
  });
});
