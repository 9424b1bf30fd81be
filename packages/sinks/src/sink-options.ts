import type { Duration } from "@sluice/schema";
import type { DeadLetterHandler } from "./sink.js";

/**
 * Retry policy for retryable destination errors (connection refused or
 * reset, timeouts, overload). Permanent errors are never retried.
 *
 * @since 0.1.0
 */
export interface RetryOptions {
  /** First delay. @defaultValue 100 */
  initialDelayMs?: Duration;
  /** Cap on one delay. @defaultValue '10s' */
  maxDelayMs?: Duration;
  /** Growth per attempt. @defaultValue 2 */
  multiplier?: number;
  /**
   * Attempts per batch before the sink fails with `SINK_RETRIES_EXHAUSTED`.
   * The default retries forever: with the buffer full, writers wait
   * (backpressure) and nothing is lost while the destination is down.
   * @defaultValue Infinity
   */
  maxAttempts?: number;
}

/**
 * Buffering, batching, retry and dead-letter options shared by every sink in
 * this package.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface BatchingOptions<R> {
  /** Name in logs and metric labels. @defaultValue the table / key prefix */
  name?: string;
  /** Rows per batch. @defaultValue 10000 (ClickHouse), 1000 (Redis) */
  maxBatchRows?: number;
  /** Approximate encoded bytes per batch. @defaultValue 8 MiB */
  maxBatchBytes?: number;
  /** Longest a record waits in the buffer before its batch is sent. @defaultValue '1s' */
  maxDelayMs?: Duration;
  /**
   * Rows buffered (including the batch in flight) before `write` waits.
   * @defaultValue 100000
   */
  maxBufferedRows?: number;
  /** Retry policy for retryable errors. */
  retry?: RetryOptions;
  /**
   * Receives records the destination rejects permanently. Without it, a
   * permanent rejection fails the sink (`SINK_REJECTED`) so the runtime
   * stops before committing offsets.
   */
  deadLetter?: DeadLetterHandler<R>;
  /**
   * Maps a record to its deterministic identity. Defaults to `record.id`
   * (window results) or `topic:partition:offset`.
   */
  identity?: (record: R) => string;
}
