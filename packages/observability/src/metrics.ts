import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type Registry,
  type RegistryContentType,
} from "prom-client";
import { channels } from "./channels.js";
import { LabelGuard } from "./internal/label-guard.js";
import {
  count,
  failed,
  finite,
  MalformedMessage,
  optionalCount,
  partitions,
} from "./internal/read.js";
import { subscribeAll } from "./internal/subscribe.js";
import { type MetricDefinition, metricCatalog } from "./metric-catalog.js";
import { ObservabilityError } from "./observability-error.js";

/**
 * Options of {@link createMetrics}.
 *
 * @since 0.1.0
 */
export interface MetricsOptions {
  /**
   * The prom-client registry to register metrics in. Required: Sluice never
   * touches prom-client's global default registry unless you pass it here.
   */
  registry: Registry<RegistryContentType>;
  /**
   * Prefix of every metric name; letters, digits, `_` and `:`.
   * @defaultValue `"sluice_"`
   */
  prefix?: string;
  /**
   * Distinct values each label (topic, application_id, sink, name, store,
   * code) may take; later new values become `__other__`. `partition` may take
   * `max(maxLabelValues, 1024)` values: Kafka's partition counts bound it.
   * @defaultValue 100
   */
  maxLabelValues?: number;
  /**
   * Also register prom-client's default process metrics (CPU, memory, event
   * loop lag, GC) in the same registry, with the same prefix.
   * @defaultValue false
   */
  defaultMetrics?: boolean;
  /**
   * Wall clock in epoch ms, used for stream-time lag and sink failing time.
   * @defaultValue `Date.now`
   */
  now?: () => number;
}

/**
 * Handle returned by {@link createMetrics}.
 *
 * @since 0.1.0
 */
export interface Metrics {
  /** The registry the metrics live in. */
  readonly registry: Registry<RegistryContentType>;
  /** Full names (with prefix) of every metric registered, in catalog order. */
  readonly names: readonly string[];
  /** `'open'` until `close()`, then `'closed'`. */
  readonly status: "open" | "closing" | "closed";
  /**
   * Resets every value to zero (and forgets label sets).
   * @throws ObservabilityError `OBSERVABILITY_METRICS_CLOSED` after `close()`
   */
  reset(): void;
  /** Unsubscribes from every channel and removes the metrics from the registry. Idempotent. */
  close(): Promise<void>;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const PREFIX_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;
const WORKER_EVENTS = new Set(["spawn", "ready", "exit", "restart", "kill", "stop", "failed"]);
const REFUSAL_REASONS = new Set(["generation-over", "producer-fenced"]);

type Labels = Record<string, string>;
type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

function invalid(message: string): ObservabilityError {
  return new ObservabilityError("OBSERVABILITY_INVALID_OPTIONS", message);
}

function validate(opts: MetricsOptions): Required<Omit<MetricsOptions, "registry">> & {
  registry: Registry<RegistryContentType>;
} {
  if (typeof opts !== "object" || opts === null) {
    throw invalid("createMetrics needs an options object with a prom-client `registry`");
  }
  const reg = opts.registry as unknown as Record<string, unknown> | undefined;
  if (
    !reg ||
    typeof reg.registerMetric !== "function" ||
    typeof reg.getSingleMetric !== "function" ||
    typeof reg.removeSingleMetric !== "function"
  ) {
    throw invalid(
      "createMetrics: `registry` must be a prom-client Registry (new Registry()); pass prom-client's `register` explicitly to use the global one",
    );
  }
  const prefix = opts.prefix ?? "sluice_";
  if (typeof prefix !== "string" || !PREFIX_RE.test(prefix)) {
    throw invalid(
      `createMetrics: prefix must match [a-zA-Z_:][a-zA-Z0-9_:]* (or be empty); got ${JSON.stringify(prefix)}`,
    );
  }
  const maxLabelValues = opts.maxLabelValues ?? 100;
  if (!Number.isInteger(maxLabelValues) || maxLabelValues < 1 || maxLabelValues > 100_000) {
    throw invalid(
      `createMetrics: maxLabelValues must be an integer from 1 to 100000; got ${JSON.stringify(maxLabelValues)}`,
    );
  }
  const now = opts.now ?? Date.now;
  if (typeof now !== "function") throw invalid("createMetrics: now must be a function");
  const defaultMetrics = opts.defaultMetrics ?? false;
  if (typeof defaultMetrics !== "boolean") {
    throw invalid(
      `createMetrics: defaultMetrics must be a boolean; got ${JSON.stringify(defaultMetrics)}`,
    );
  }
  return { registry: opts.registry, prefix, maxLabelValues, now, defaultMetrics };
}

function build(
  def: MetricDefinition,
  fullName: string,
  registry: Registry<RegistryContentType>,
  collect?: () => void,
) {
  const common = {
    name: fullName,
    help: def.help,
    labelNames: [...def.labelNames],
    registers: [registry],
  };
  switch (def.type) {
    case "counter":
      return new Counter(common);
    case "gauge":
      return collect ? new Gauge({ ...common, collect }) : new Gauge(common);
    case "histogram":
      return new Histogram({ ...common, buckets: [...(def.buckets ?? [])] });
  }
}

/**
 * Subscribes to every Sluice diagnostics channel (see {@link channels}) and
 * turns the messages into Prometheus metrics in `registry`. Names and labels
 * are listed in {@link metricCatalog} and the package README. A malformed
 * message is counted in `observability_dropped_messages_total` and never
 * throws into the publisher.
 *
 * @param options - {@link MetricsOptions}
 * @returns a {@link Metrics} handle; `close()` it to unsubscribe and unregister
 * @throws ObservabilityError `OBSERVABILITY_INVALID_OPTIONS` for a bad option,
 *   `OBSERVABILITY_DUPLICATE_METRICS` when the registry already has one of the names
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * const registry = new Registry();
 * const metrics = createMetrics({ registry, prefix: "sluice_" });
 * // ... later
 * await metrics.close();
 * ```
 * @since 0.1.0
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const { registry, prefix, maxLabelValues, now, defaultMetrics } = validate(options);
  const guard = new LabelGuard(maxLabelValues);

  for (const def of metricCatalog) {
    if (registry.getSingleMetric(prefix + def.name)) {
      throw new ObservabilityError(
        "OBSERVABILITY_DUPLICATE_METRICS",
        `createMetrics: the registry already has a metric named ${prefix + def.name}; close the other Metrics handle first or use another prefix`,
      );
    }
  }

  // State read at scrape time.
  const streamTimes = new Map<string, { app: string; partition: string; streamTime: number }>();
  const sinkFailingSince = new Map<string, { sink: string; name: string; since: number }>();
  const sinkSeen = new Map<string, { sink: string; name: string }>();
  const cacheTotals = new Map<string, { store: string; hits: number; misses: number }>();
  const lagLabels = new Map<string, Labels>(); // key app|partition|topic
  const assigned = new Map<string, Set<number>>();
  const backpressure = new Map<string, boolean>();
  /** runWorkers members with a live process. */
  const runningMembers = new Set<number>();

  const m = new Map<string, AnyMetric>();
  const collectors: Record<string, (() => void) | undefined> = {
    windowing_stream_time_lag_seconds: () => {
      const g = m.get("windowing_stream_time_lag_seconds") as Gauge<string>;
      g.reset();
      const t = now();
      for (const s of streamTimes.values()) {
        g.set(
          { application_id: s.app, partition: s.partition },
          Math.max(0, (t - s.streamTime) / 1000),
        );
      }
    },
    sink_failing_seconds: () => {
      const g = m.get("sink_failing_seconds") as Gauge<string>;
      g.reset();
      const t = now();
      for (const [key, s] of sinkSeen) {
        const f = sinkFailingSince.get(key);
        g.set({ sink: s.sink, name: s.name }, f ? Math.max(0, (t - f.since) / 1000) : 0);
      }
    },
  };
  const names: string[] = [];
  for (const def of metricCatalog) {
    names.push(prefix + def.name);
    m.set(def.name, build(def, prefix + def.name, registry, collectors[def.name]));
  }
  const counter = (name: string) => m.get(name) as Counter<string>;
  const gauge = (name: string) => m.get(name) as Gauge<string>;
  const histogram = (name: string) => m.get(name) as Histogram<string>;
  const dropped = counter("observability_dropped_messages_total");

  const handlers: Record<string, (msg: Record<string, unknown>) => void> = {
    [channels.producerBatch]: (msg) => {
      const messages = count(msg, "messages");
      const bytes = count(msg, "bytes");
      const durationMs = count(msg, "durationMs");
      const topic = guard.value("topic", msg.topic);
      histogram("producer_send_duration_seconds").observe({ topic }, durationMs / 1000);
      if (failed(msg)) {
        counter("producer_send_errors_total").inc({ topic, code: guard.errorCode(msg.error) });
        counter("producer_failed_events_total").inc({ topic }, messages);
        return;
      }
      counter("producer_events_total").inc({ topic }, messages);
      counter("producer_bytes_total").inc({ topic }, bytes);
      histogram("producer_batch_size").observe({ topic }, messages);
    },
    [channels.producerInvalid]: (msg) => {
      const topic = guard.value("topic", msg.topic);
      counter("producer_invalid_events_total").inc({ topic, code: guard.code(msg.code) });
      if (msg.dlq === true) counter("producer_dlq_events_total").inc({ topic });
    },
    [channels.jobRecords]: (msg) => {
      const n = count(msg, "count");
      counter("consumer_records_total").inc(
        {
          application_id: guard.value("application_id", msg.applicationId),
          topic: guard.value("topic", msg.topic),
          partition: guard.partition(msg.partition),
        },
        n,
      );
    },
    [channels.jobLag]: (msg) => {
      const lag = count(msg, "lag");
      const labels = {
        application_id: guard.value("application_id", msg.applicationId),
        topic: guard.value("topic", msg.topic),
        partition: guard.partition(msg.partition),
      };
      lagLabels.set(`${labels.application_id}|${labels.partition}|${labels.topic}`, labels);
      gauge("consumer_lag").set(labels, lag);
    },
    [channels.jobLate]: (msg) => {
      counter("windowing_late_records_total").inc(
        { application_id: guard.value("application_id", msg.applicationId) },
        count(msg, "count"),
      );
    },
    [channels.jobDlq]: (msg) => {
      counter("job_dlq_records_total").inc(
        {
          application_id: guard.value("application_id", msg.applicationId),
          code: guard.code(msg.code),
        },
        count(msg, "count"),
      );
    },
    [channels.jobWindows]: (msg) => {
      const open = count(msg, "open");
      const closed = count(msg, "closed");
      const application_id = guard.value("application_id", msg.applicationId);
      gauge("windowing_open_windows").set({ application_id }, open);
      counter("windowing_closed_windows_total").inc({ application_id }, closed);
    },
    [channels.jobStreamTime]: (msg) => {
      const streamTime = finite(msg, "streamTime");
      const app = guard.value("application_id", msg.applicationId);
      const partition = guard.partition(msg.partition);
      streamTimes.set(`${app}|${partition}`, { app, partition, streamTime });
      gauge("windowing_stream_time_seconds").set(
        { application_id: app, partition },
        streamTime / 1000,
      );
    },
    [channels.jobCheckpoint]: (msg) => {
      const durationMs = count(msg, "durationMs");
      const application_id = guard.value("application_id", msg.applicationId);
      if (failed(msg)) {
        counter("job_checkpoint_failures_total").inc({ application_id });
        return;
      }
      histogram("job_checkpoint_duration_seconds").observe({ application_id }, durationMs / 1000);
    },
    [channels.jobCommit]: (msg) => {
      const durationMs = count(msg, "durationMs");
      const application_id = guard.value("application_id", msg.applicationId);
      if (failed(msg)) {
        counter("job_commit_failures_total").inc({ application_id });
        return;
      }
      histogram("job_commit_duration_seconds").observe({ application_id }, durationMs / 1000);
    },
    [channels.jobCommitRefused]: (msg) => {
      const reason = msg.reason;
      if (typeof reason !== "string" || !REFUSAL_REASONS.has(reason))
        throw new MalformedMessage(`reason is not one of ${[...REFUSAL_REASONS].join(", ")}`);
      counter("job_commits_refused_total").inc({
        application_id: guard.value("application_id", msg.applicationId),
        reason,
      });
    },
    [channels.jobRestore]: (msg) => {
      const records = count(msg, "records");
      const durationMs = count(msg, "durationMs");
      const labels = {
        application_id: guard.value("application_id", msg.applicationId),
        store: guard.value("store", msg.store),
      };
      histogram("job_restore_duration_seconds").observe(labels, durationMs / 1000);
      counter("job_restored_records_total").inc(labels, records);
    },
    [channels.jobRebalance]: (msg) => {
      const added = partitions(msg, "assigned");
      const removed = partitions(msg, "revoked");
      const application_id = guard.value("application_id", msg.applicationId);
      let set = assigned.get(application_id);
      if (!set) {
        set = new Set();
        assigned.set(application_id, set);
      }
      for (const p of removed) {
        set.delete(p);
        const partition = guard.partition(p);
        streamTimes.delete(`${application_id}|${partition}`);
        gauge("windowing_stream_time_seconds").remove({ application_id, partition });
        for (const [key, labels] of lagLabels) {
          if (key.startsWith(`${application_id}|${partition}|`)) {
            gauge("consumer_lag").remove(labels);
            lagLabels.delete(key);
          }
        }
      }
      for (const p of added) set.add(p);
      counter("job_rebalances_total").inc({ application_id });
      gauge("job_assigned_partitions").set({ application_id }, set.size);
    },
    [channels.jobReady]: (msg) => {
      if (typeof msg.ready !== "boolean") throw new MalformedMessage("ready is not a boolean");
      gauge("job_ready").set(
        { application_id: guard.value("application_id", msg.applicationId) },
        msg.ready ? 1 : 0,
      );
    },
    [channels.jobWorkers]: (msg) => {
      const event = msg.event;
      if (typeof event !== "string" || !WORKER_EVENTS.has(event))
        throw new MalformedMessage(`event is not one of ${[...WORKER_EVENTS].join(", ")}`);
      counter("job_worker_events_total").inc({ event });
      if (event !== "spawn" && event !== "exit") return;
      if (typeof msg.member !== "number" || !Number.isInteger(msg.member) || msg.member < 0)
        throw new MalformedMessage("member is not a non-negative integer");
      if (event === "spawn") runningMembers.add(msg.member);
      else runningMembers.delete(msg.member);
      gauge("job_workers_running").set({}, runningMembers.size);
    },
    [channels.stateStats]: (msg) => {
      const keys = count(msg, "keys");
      const bytes = count(msg, "bytes");
      const hits = count(msg, "cacheHits");
      const misses = count(msg, "cacheMisses");
      const store = guard.value("store", msg.store);
      const partition = msg.partition === undefined ? "all" : guard.partition(msg.partition);
      gauge("state_keys").set({ store, partition }, keys);
      gauge("state_bytes").set({ store, partition }, bytes);
      // cacheHits / cacheMisses are cumulative since the store opened: add the
      // increase; a drop means the store was reopened and counts from zero.
      const key = `${store}|${partition}`;
      const prev = cacheTotals.get(key);
      const dh = prev && hits >= prev.hits ? hits - prev.hits : hits;
      const dm = prev && misses >= prev.misses ? misses - prev.misses : misses;
      cacheTotals.set(key, { store, hits, misses });
      if (dh > 0) counter("state_cache_hits_total").inc({ store }, dh);
      if (dm > 0) counter("state_cache_misses_total").inc({ store }, dm);
      let h = 0;
      let total = 0;
      for (const t of cacheTotals.values()) {
        if (t.store !== store) continue;
        h += t.hits;
        total += t.hits + t.misses;
      }
      gauge("state_cache_hit_ratio").set({ store }, total === 0 ? 0 : h / total);
    },
    [channels.sinkBatch]: (msg) => {
      const rows = count(msg, "rows");
      const bytes = optionalCount(msg, "bytes");
      const durationMs = count(msg, "durationMs");
      const sink = guard.value("sink", msg.sink);
      const name = guard.value("name", msg.name);
      const labels = { sink, name };
      const key = `${sink}|${name}`;
      sinkSeen.set(key, labels);
      histogram("sink_batch_duration_seconds").observe(labels, durationMs / 1000);
      if (failed(msg)) {
        counter("sink_failures_total").inc({ ...labels, code: guard.errorCode(msg.error) });
        counter("sink_failed_rows_total").inc(labels, rows);
        if (!sinkFailingSince.has(key)) sinkFailingSince.set(key, { sink, name, since: now() });
        return;
      }
      sinkFailingSince.delete(key);
      counter("sink_rows_total").inc(labels, rows);
      if (bytes !== undefined) counter("sink_bytes_total").inc(labels, bytes);
    },
    [channels.sinkRetry]: (msg) => {
      const sink = guard.value("sink", msg.sink);
      const name = guard.value("name", msg.name);
      const key = `${sink}|${name}`;
      sinkSeen.set(key, { sink, name });
      if (!sinkFailingSince.has(key)) sinkFailingSince.set(key, { sink, name, since: now() });
      counter("sink_retries_total").inc({ sink, name, code: guard.code(msg.code) });
    },
    [channels.sinkBuffer]: (msg) => {
      const buffered = count(msg, "buffered");
      if (typeof msg.backpressure !== "boolean") {
        throw new MalformedMessage("backpressure is not a boolean");
      }
      const labels = { sink: guard.value("sink", msg.sink), name: guard.value("name", msg.name) };
      const key = `${labels.sink}|${labels.name}`;
      gauge("sink_buffered_records").set(labels, buffered);
      gauge("sink_backpressure").set(labels, msg.backpressure ? 1 : 0);
      if (msg.backpressure && !backpressure.get(key)) {
        counter("sink_backpressure_pauses_total").inc(labels);
      }
      backpressure.set(key, msg.backpressure);
    },
    [channels.sinkDlq]: (msg) => {
      counter("sink_dlq_records_total").inc(
        {
          sink: guard.value("sink", msg.sink),
          name: guard.value("name", msg.name),
          code: guard.code(msg.code),
        },
        count(msg, "count"),
      );
    },
  };

  // Never throw into the publisher: a bad message is counted and ignored.
  const unsubscribe = subscribeAll(handlers, (channel) => dropped.inc({ channel }));

  let defaultMetricNames: string[] = [];
  if (defaultMetrics) {
    const before = new Set(registry.getMetricsAsArray().map((x) => x.name));
    try {
      collectDefaultMetrics({ register: registry, prefix });
    } catch (err) {
      // leave the registry as it was: no half-registered set, no subscriptions
      unsubscribe();
      for (const x of registry.getMetricsAsArray()) {
        if (!before.has(x.name)) registry.removeSingleMetric(x.name);
      }
      for (const n of names) registry.removeSingleMetric(n);
      throw new ObservabilityError(
        "OBSERVABILITY_DUPLICATE_METRICS",
        `createMetrics: the registry already has prom-client's default metrics with prefix ${JSON.stringify(prefix)} (${(err as Error)?.message}); pass defaultMetrics: false, or another prefix`,
        { cause: err },
      );
    }
    defaultMetricNames = registry
      .getMetricsAsArray()
      .map((x) => x.name)
      .filter((n) => !before.has(n));
  }

  let status: "open" | "closing" | "closed" = "open";
  const close = async () => {
    if (status !== "open") return;
    status = "closed";
    unsubscribe();
    for (const n of [...names, ...defaultMetricNames]) registry.removeSingleMetric(n);
  };

  return {
    registry,
    names,
    get status() {
      return status;
    },
    reset() {
      if (status !== "open") {
        throw new ObservabilityError(
          "OBSERVABILITY_METRICS_CLOSED",
          "metrics.reset() was called after close(); create new metrics with createMetrics()",
        );
      }
      for (const metric of m.values()) metric.reset();
      guard.reset();
      streamTimes.clear();
      sinkFailingSince.clear();
      sinkSeen.clear();
      cacheTotals.clear();
      lagLabels.clear();
      assigned.clear();
      backpressure.clear();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
