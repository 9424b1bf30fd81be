/**
 * Kind of a metric in the {@link metricCatalog}.
 *
 * @since 0.1.0
 */
export type MetricType = "counter" | "gauge" | "histogram";

/**
 * One metric `createMetrics` registers: its name without prefix, type, help
 * text, label names and (for histograms) bucket bounds.
 *
 * @since 0.1.0
 */
export interface MetricDefinition {
  /** Name without the prefix, for example `producer_events_total`. */
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** The channel whose messages drive it. */
  readonly channel: string;
  readonly buckets?: readonly number[];
}

const durationBuckets = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;
const restoreBuckets = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600] as const;
const sizeBuckets = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

const def = (
  name: string,
  type: MetricType,
  channel: string,
  labelNames: readonly string[],
  help: string,
  buckets?: readonly number[],
): MetricDefinition =>
  buckets
    ? { name, type, channel, labelNames, help, buckets }
    : { name, type, channel, labelNames, help };

/**
 * Every metric `createMetrics` registers, in README order. Names are stable:
 * renaming one is a breaking change. Labels never carry user ids; each label
 * is capped at `maxLabelValues` distinct values (then `__other__`).
 *
 * @example
 * ```ts
 * for (const m of metricCatalog) console.log(`sluice_${m.name}`, m.type, m.labelNames);
 * ```
 * @since 0.1.0
 */
export const metricCatalog: readonly MetricDefinition[] = [
  // producer
  def(
    "producer_events_total",
    "counter",
    "sluice:producer:batch",
    ["topic"],
    "Events delivered to Kafka in acknowledged requests.",
  ),
  def(
    "producer_bytes_total",
    "counter",
    "sluice:producer:batch",
    ["topic"],
    "Bytes delivered to Kafka in acknowledged requests.",
  ),
  def(
    "producer_batch_size",
    "histogram",
    "sluice:producer:batch",
    ["topic"],
    "Events per producer request.",
    sizeBuckets,
  ),
  def(
    "producer_send_duration_seconds",
    "histogram",
    "sluice:producer:batch",
    ["topic"],
    "Latency of producer requests, failed ones included.",
    durationBuckets,
  ),
  def(
    "producer_send_errors_total",
    "counter",
    "sluice:producer:batch",
    ["topic", "code"],
    "Producer requests that failed, by error code.",
  ),
  def(
    "producer_failed_events_total",
    "counter",
    "sluice:producer:batch",
    ["topic"],
    "Events in producer requests that failed.",
  ),
  def(
    "producer_invalid_events_total",
    "counter",
    "sluice:producer:invalid",
    ["topic", "code"],
    "Events rejected by the schema before sending, by error code.",
  ),
  def(
    "producer_dlq_events_total",
    "counter",
    "sluice:producer:invalid",
    ["topic"],
    "Invalid events the producer sent to a dead-letter topic.",
  ),
  // consumer
  def(
    "consumer_records_total",
    "counter",
    "sluice:job:records",
    ["application_id", "topic", "partition"],
    "Records consumed by a job.",
  ),
  def(
    "consumer_lag",
    "gauge",
    "sluice:job:lag",
    ["application_id", "topic", "partition"],
    "Consumer lag in records: high watermark minus next offset.",
  ),
  // job
  def(
    "job_dlq_records_total",
    "counter",
    "sluice:job:dlq",
    ["application_id", "code"],
    "Records a job sent to its dead-letter topic, by error code.",
  ),
  def(
    "job_checkpoint_duration_seconds",
    "histogram",
    "sluice:job:checkpoint",
    ["application_id"],
    "Duration of state checkpoints.",
    durationBuckets,
  ),
  def(
    "job_checkpoint_failures_total",
    "counter",
    "sluice:job:checkpoint",
    ["application_id"],
    "State checkpoints that failed.",
  ),
  def(
    "job_commit_duration_seconds",
    "histogram",
    "sluice:job:commit",
    ["application_id"],
    "Duration of offset commits (or transaction commits).",
    durationBuckets,
  ),
  def(
    "job_commit_failures_total",
    "counter",
    "sluice:job:commit",
    ["application_id"],
    "Offset commits that failed.",
  ),
  def(
    "job_commits_refused_total",
    "counter",
    "sluice:job:commit-refused",
    ["application_id", "reason"],
    "Exactly-once commits the broker refused and aborted, their partitions' work processed again, by reason: generation-over, producer-fenced.",
  ),
  def(
    "job_restore_duration_seconds",
    "histogram",
    "sluice:job:restore",
    ["application_id", "store"],
    "Duration of restoring one store partition from its changelog.",
    restoreBuckets,
  ),
  def(
    "job_restored_records_total",
    "counter",
    "sluice:job:restore",
    ["application_id", "store"],
    "Changelog records replayed while restoring state.",
  ),
  def(
    "job_rebalances_total",
    "counter",
    "sluice:job:rebalance",
    ["application_id"],
    "Consumer-group rebalances seen by a job.",
  ),
  def(
    "job_assigned_partitions",
    "gauge",
    "sluice:job:rebalance",
    ["application_id"],
    "Partitions currently assigned to a job.",
  ),
  def(
    "job_ready",
    "gauge",
    "sluice:job:ready",
    ["application_id"],
    "1 when the job has its partitions assigned and state restored, else 0.",
  ),
  def(
    "job_worker_events_total",
    "counter",
    "sluice:job:workers",
    ["event"],
    "Member-process events of runWorkers: spawn, ready, exit, restart, kill, stop, failed.",
  ),
  def(
    "job_workers_running",
    "gauge",
    "sluice:job:workers",
    [],
    "Member processes of runWorkers currently running (spawned and not yet exited).",
  ),
  // windowing
  def(
    "windowing_open_windows",
    "gauge",
    "sluice:job:windows",
    ["application_id"],
    "Windows currently open.",
  ),
  def(
    "windowing_closed_windows_total",
    "counter",
    "sluice:job:windows",
    ["application_id"],
    "Windows closed (final results emitted).",
  ),
  def(
    "windowing_late_records_total",
    "counter",
    "sluice:job:late",
    ["application_id"],
    "Records that arrived after their window's grace and went to the late topic.",
  ),
  def(
    "windowing_stream_time_seconds",
    "gauge",
    "sluice:job:stream-time",
    ["application_id", "partition"],
    "Stream time of a partition (max event time seen), Unix seconds.",
  ),
  def(
    "windowing_stream_time_lag_seconds",
    "gauge",
    "sluice:job:stream-time",
    ["application_id", "partition"],
    "Wall clock minus stream time at scrape, seconds.",
  ),
  // state
  def(
    "state_keys",
    "gauge",
    "sluice:state:stats",
    ["store", "partition"],
    "Keys in a state store partition.",
  ),
  def(
    "state_bytes",
    "gauge",
    "sluice:state:stats",
    ["store", "partition"],
    "Approximate bytes in a state store partition.",
  ),
  def("state_cache_hits_total", "counter", "sluice:state:stats", ["store"], "State cache hits."),
  def(
    "state_cache_misses_total",
    "counter",
    "sluice:state:stats",
    ["store"],
    "State cache misses.",
  ),
  def(
    "state_cache_hit_ratio",
    "gauge",
    "sluice:state:stats",
    ["store"],
    "Cache hits over lookups since the store opened (0 to 1).",
  ),
  // sinks
  def(
    "sink_rows_total",
    "counter",
    "sluice:sink:batch",
    ["sink", "name"],
    "Rows a sink wrote and the destination acknowledged.",
  ),
  def(
    "sink_bytes_total",
    "counter",
    "sluice:sink:batch",
    ["sink", "name"],
    "Bytes a sink wrote and the destination acknowledged.",
  ),
  def(
    "sink_batch_duration_seconds",
    "histogram",
    "sluice:sink:batch",
    ["sink", "name"],
    "Latency of sink batch writes, failed ones included.",
    durationBuckets,
  ),
  def(
    "sink_failures_total",
    "counter",
    "sluice:sink:batch",
    ["sink", "name", "code"],
    "Sink batch writes that failed, by error code.",
  ),
  def(
    "sink_failed_rows_total",
    "counter",
    "sluice:sink:batch",
    ["sink", "name"],
    "Rows in sink batch writes that failed.",
  ),
  def(
    "sink_failing_seconds",
    "gauge",
    "sluice:sink:batch",
    ["sink", "name"],
    "Seconds since the sink's first failure without a success since; 0 when healthy.",
  ),
  def(
    "sink_retries_total",
    "counter",
    "sluice:sink:retry",
    ["sink", "name", "code"],
    "Sink write retries, by error code.",
  ),
  def(
    "sink_buffered_records",
    "gauge",
    "sluice:sink:buffer",
    ["sink", "name"],
    "Records buffered in a sink, not yet acknowledged.",
  ),
  def(
    "sink_backpressure",
    "gauge",
    "sluice:sink:buffer",
    ["sink", "name"],
    "1 while a sink's buffer is full and writers wait, else 0.",
  ),
  def(
    "sink_backpressure_pauses_total",
    "counter",
    "sluice:sink:buffer",
    ["sink", "name"],
    "Times a sink's buffer filled and writers had to wait.",
  ),
  def(
    "sink_dlq_records_total",
    "counter",
    "sluice:sink:dlq",
    ["sink", "name", "code"],
    "Records a sink dead-lettered, by error code.",
  ),
  // self
  def(
    "observability_dropped_messages_total",
    "counter",
    "*",
    ["channel"],
    "Channel messages ignored because their shape was wrong.",
  ),
];
