export {
  type ChannelName,
  channels,
  type JobCheckpointMessage,
  type JobCommitMessage,
  type JobCommitRefusedMessage,
  type JobDlqMessage,
  type JobLagMessage,
  type JobLateMessage,
  type JobReadyMessage,
  type JobRebalanceMessage,
  type JobRecordsMessage,
  type JobRestoreMessage,
  type JobStreamTimeMessage,
  type JobWindowsMessage,
  type JobWorkersMessage,
  type ProducerBatchMessage,
  type ProducerInvalidMessage,
  type SinkBatchMessage,
  type SinkBufferMessage,
  type SinkDlqMessage,
  type SinkRetryMessage,
  type StateStatsMessage,
} from "./channels.js";
export type { HealthCheck, HealthSource } from "./health-check.js";
export {
  type CreateLoggerOptions,
  createLogger,
  type KafkaLogCreator,
  type KafkaLogEntry,
  kafkaLogCreator,
} from "./logger.js";
export {
  type MetricDefinition,
  type MetricType,
  metricCatalog,
} from "./metric-catalog.js";
export { createMetrics, type Metrics, type MetricsOptions } from "./metrics.js";
export { ObservabilityError, type ObservabilityErrorCode } from "./observability-error.js";
export {
  type ObservabilityServer,
  type ObservabilityServerOptions,
  startObservabilityServer,
} from "./observability-server.js";
export { createReadiness, type Readiness, type ReadinessOptions } from "./readiness.js";
export {
  createTraceContext,
  extractTraceContext,
  formatTraceparent,
  injectTraceContext,
  type KafkaHeaders,
  type OpenTelemetryApiLike,
  parseTraceparent,
  type TraceContext,
  type TraceContextPropagator,
  withTraceContext,
} from "./trace-context.js";
