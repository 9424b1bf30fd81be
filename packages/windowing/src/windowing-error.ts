import { SluiceError, type SluiceErrorOptions } from "@sluice/schema";

/**
 * Stable codes carried by {@link WindowingError}.
 *
 * - `WINDOWING_INVALID_OPTIONS` — an option or pipeline step was missing or invalid.
 * - `WINDOWING_PIPELINE_INCOMPLETE` — the job has no `window(...)` or `aggregate(...)` step.
 * - `WINDOWING_INVALID_TIMESTAMP` — an event time was not a finite number of epoch milliseconds.
 * - `WINDOWING_JOB_CLOSED` — a job method was called after `stop()`.
 * - `WINDOWING_DRIVER_CLOSED` — a test driver method was called after `close()`.
 * - `WINDOWING_ALREADY_STARTED` — `start()` was called twice, or the pipeline was changed after `start()`.
 * - `WINDOWING_KAFKA_FAILED` — a Kafka request failed (retryable).
 * - `WINDOWING_RESTORE_FAILED` — state could not be restored from the changelog (retryable).
 * - `WINDOWING_USER_FUNCTION_FAILED` — a user `filter`/`map`/`keyBy`/aggregator function threw.
 * - `WINDOWING_WORKER_FAILED` — a `runWorkers` member could not load its module or build/start its job (not retried).
 * - `WINDOWING_WORKER_RESTARTS_EXHAUSTED` — a `runWorkers` member crashed more often in a row than `restart.maxRestarts` allows.
 * - `WINDOWING_NOT_COPARTITIONED` — the topics of a join have different partition counts.
 *
 * @since 0.1.0
 */
export type WindowingErrorCode =
  | "WINDOWING_INVALID_OPTIONS"
  | "WINDOWING_PIPELINE_INCOMPLETE"
  | "WINDOWING_INVALID_TIMESTAMP"
  | "WINDOWING_JOB_CLOSED"
  | "WINDOWING_DRIVER_CLOSED"
  | "WINDOWING_ALREADY_STARTED"
  | "WINDOWING_KAFKA_FAILED"
  | "WINDOWING_RESTORE_FAILED"
  | "WINDOWING_USER_FUNCTION_FAILED"
  | "WINDOWING_WORKER_FAILED"
  | "WINDOWING_WORKER_RESTARTS_EXHAUSTED"
  | "WINDOWING_NOT_COPARTITIONED";

const retryableCodes: ReadonlySet<WindowingErrorCode> = new Set([
  "WINDOWING_KAFKA_FAILED",
  "WINDOWING_RESTORE_FAILED",
]);

/**
 * The one error class of `@sluice/windowing`. Extends `SluiceError`, so
 * `SluiceError.isInstance(err)` is true; check `err.code` for the cause.
 *
 * @example
 * ```ts
 * try { await job.start() } catch (err) {
 *   if (WindowingError.isInstance(err) && err.code === "WINDOWING_INVALID_OPTIONS") console.error(err.message);
 * }
 * ```
 * @since 0.1.0
 */
export class WindowingError extends SluiceError {
  declare readonly code: WindowingErrorCode;

  /**
   * @param code - one of {@link WindowingErrorCode}
   * @param message - what was wrong, with the offending value, and what to do
   * @param options - `cause`; `retryable` defaults by code
   */
  constructor(code: WindowingErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(code, message, { retryable: retryableCodes.has(code), ...options });
    this.name = "WindowingError";
  }

  /**
   * True for a {@link WindowingError} from any installed copy of this package.
   *
   * @param value - anything caught
   * @returns whether `value` is a windowing error
   */
  static override isInstance(value: unknown): value is WindowingError {
    return (
      SluiceError.isInstance(value) &&
      (value as SluiceError).name === "WindowingError" &&
      typeof (value as SluiceError).code === "string" &&
      (value as SluiceError).code.startsWith("WINDOWING_")
    );
  }
}
