/**
 * Names of the `node:diagnostics_channel` channels Sluice packages publish on.
 * {@link createMetrics} and {@link createReadiness} subscribe to them; any
 * other subscriber may too.
 *
 * @example
 * ```ts
 * import diagnostics_channel from "node:diagnostics_channel";
 * diagnostics_channel.subscribe(channels.sinkBatch, (msg) => console.log(msg));
 * ```
 * @since 0.1.0
 */
export const channels = {
  producerBatch: "sluice:producer:batch",
  producerInvalid: "sluice:producer:invalid",
  jobRecords: "sluice:job:records",
  jobLag: "sluice:job:lag",
  jobLate: "sluice:job:late",
  jobDlq: "sluice:job:dlq",
  jobWindows: "sluice:job:windows",
  jobStreamTime: "sluice:job:stream-time",
  jobCheckpoint: "sluice:job:checkpoint",
  jobCommit: "sluice:job:commit",
  jobCommitRefused: "sluice:job:commit-refused",
  jobRestore: "sluice:job:restore",
  jobRebalance: "sluice:job:rebalance",
  jobReady: "sluice:job:ready",
  jobWorkers: "sluice:job:workers",
  stateStats: "sluice:state:stats",
  sinkBatch: "sluice:sink:batch",
  sinkRetry: "sluice:sink:retry",
  sinkBuffer: "sluice:sink:buffer",
  sinkDlq: "sluice:sink:dlq",
} as const;

/**
 * One of the channel names in {@link channels}.
 *
 * @since 0.1.0
 */
export type ChannelName = (typeof channels)[keyof typeof channels];

/**
 * `sluice:producer:batch` — one per broker request / batch.
 * @since 0.1.0
 */
export interface ProducerBatchMessage {
  topic: string;
  messages: number;
  bytes: number;
  durationMs: number;
  /** Present when the request failed; an error with a `code` labels the failure. */
  error?: unknown;
}

/**
 * `sluice:producer:invalid` — an event rejected by the schema.
 * @since 0.1.0
 */
export interface ProducerInvalidMessage {
  topic: string;
  code: string;
  dlq: boolean;
}

/**
 * `sluice:job:records` — records consumed.
 * @since 0.1.0
 */
export interface JobRecordsMessage {
  applicationId: string;
  topic: string;
  partition: number;
  count: number;
}

/**
 * `sluice:job:lag` — high watermark minus next offset.
 * @since 0.1.0
 */
export interface JobLagMessage {
  applicationId: string;
  topic: string;
  partition: number;
  lag: number;
}

/**
 * `sluice:job:late` — records beyond grace.
 * @since 0.1.0
 */
export interface JobLateMessage {
  applicationId: string;
  count: number;
}

/**
 * `sluice:job:dlq` — records dead-lettered by the job.
 * @since 0.1.0
 */
export interface JobDlqMessage {
  applicationId: string;
  code: string;
  count: number;
}

/**
 * `sluice:job:windows` — `open` windows now, `closed` in this step.
 * @since 0.1.0
 */
export interface JobWindowsMessage {
  applicationId: string;
  open: number;
  closed: number;
}

/**
 * `sluice:job:stream-time` — stream time (epoch ms) of a partition.
 * @since 0.1.0
 */
export interface JobStreamTimeMessage {
  applicationId: string;
  partition: number;
  streamTime: number;
}

/**
 * `sluice:job:checkpoint` — a state checkpoint; `error` when it failed.
 * @since 0.1.0
 */
export interface JobCheckpointMessage {
  applicationId: string;
  durationMs: number;
  partitions: number;
  error?: unknown;
}

/**
 * `sluice:job:commit` — an offset commit; `error` when it failed.
 * @since 0.1.0
 */
export interface JobCommitMessage {
  applicationId: string;
  durationMs: number;
  /** Source offsets (the next to read) the commit covers, per partition it committed. */
  offsets?: { topic: string; partition: number; offset: string }[];
  error?: unknown;
}

/**
 * `sluice:job:commit-refused` — an exactly-once commit the broker refused and
 * aborted; its partitions' uncommitted work is dropped and processed again.
 * @since 0.2.0
 */
export interface JobCommitRefusedMessage {
  applicationId: string;
  /**
   * `'generation-over'`: a rebalance moved the group to a new generation;
   * `'producer-fenced'`: the transaction outlived the transaction timeout.
   */
  reason: "generation-over" | "producer-fenced";
  /** Partitions whose uncommitted work was dropped. */
  partitions: number[];
}

/**
 * `sluice:job:restore` — one store partition restored from its changelog.
 * @since 0.1.0
 */
export interface JobRestoreMessage {
  applicationId: string;
  store: string;
  partition: number;
  records: number;
  durationMs: number;
}

/**
 * `sluice:job:rebalance` — partitions assigned and revoked.
 * @since 0.1.0
 */
export interface JobRebalanceMessage {
  applicationId: string;
  assigned: number[];
  revoked: number[];
}

/**
 * `sluice:job:ready` — the job has (or no longer has) its partitions assigned and state restored.
 * @since 0.1.0
 */
export interface JobReadyMessage {
  applicationId: string;
  ready: boolean;
}

/**
 * `sluice:job:workers` — a member process of `runWorkers` (@sluice/windowing)
 * was spawned, became ready, exited, is restarted or was killed; or the
 * workers began to stop or gave up. Other fields are described with the
 * publisher's `WorkersEvent`.
 * @since 0.2.0
 */
export interface JobWorkersMessage {
  event: "spawn" | "ready" | "exit" | "restart" | "kill" | "stop" | "failed";
  /** Member index (member events). */
  member?: number;
}

/**
 * `sluice:state:stats` — a store's size and cache counters (cumulative since it opened).
 * @since 0.1.0
 */
export interface StateStatsMessage {
  store: string;
  partition?: number;
  keys: number;
  bytes: number;
  cacheHits: number;
  cacheMisses: number;
}

/**
 * `sluice:sink:batch` — one batch written (or failed, with `error`).
 * @since 0.1.0
 */
export interface SinkBatchMessage {
  sink: string;
  name: string;
  rows: number;
  bytes?: number;
  durationMs: number;
  error?: unknown;
}

/**
 * `sluice:sink:retry` — a sink is about to retry after `delayMs`.
 * @since 0.1.0
 */
export interface SinkRetryMessage {
  sink: string;
  name: string;
  attempt: number;
  delayMs: number;
  code: string;
}

/**
 * `sluice:sink:buffer` — records buffered and whether writers are held back.
 * @since 0.1.0
 */
export interface SinkBufferMessage {
  sink: string;
  name: string;
  buffered: number;
  backpressure: boolean;
}

/**
 * `sluice:sink:dlq` — records a sink dead-lettered.
 * @since 0.1.0
 */
export interface SinkDlqMessage {
  sink: string;
  name: string;
  count: number;
  code: string;
}
