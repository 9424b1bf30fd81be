export { SluiceError, type SluiceErrorOptions } from "@sluice/schema";
export {
  type EventTableOptions,
  eventTableSql,
  schemaColumns,
  type WindowResultLike,
  type WindowResultTableOptions,
  windowResultRow,
  windowResultTableSql,
} from "./clickhouse-ddl.js";
export {
  type ChdbSessionLike,
  type ClickHouseExecutor,
  fromChdbSession,
  fromClickHouseClient,
} from "./clickhouse-executor.js";
export {
  type ClickHouseFeatures,
  detectClickHouseFeatures,
  featuresOf,
} from "./clickhouse-features.js";
export { quoteIdentifier } from "./clickhouse-identifier.js";
export {
  type ClickHouseSink,
  type ClickHouseSinkOptions,
  createClickHouseSink,
} from "./clickhouse-sink.js";
export {
  type ConformanceSinkHints,
  type SinkConformanceCase,
  type SinkConformanceOptions,
  sinkConformanceCases,
} from "./conformance.js";
export {
  createRedisSink,
  type RedisCommand,
  type RedisCommandName,
  type RedisSink,
  type RedisSinkOptions,
  type RedisWrite,
} from "./redis-sink.js";
export type { DeadLetter, DeadLetterHandler, DisposableSink, Sink, SinkStatus } from "./sink.js";
export { SinkError, type SinkErrorCode } from "./sink-error.js";
export type { BatchingOptions, RetryOptions } from "./sink-options.js";
