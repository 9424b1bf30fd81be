import { SluiceError, type SluiceErrorOptions } from "@sluice/schema";

/**
 * Stable codes of {@link SinkError}.
 *
 * - `SINK_CLOSED` — the sink was closed; create a new one.
 * - `SINK_INVALID_OPTIONS` — an option is missing or out of range.
 * - `SINK_INVALID_IDENTIFIER` — a table, database or column name is not a plain identifier.
 * - `SINK_INVALID_RECORD` — a record cannot be mapped (no identity, no sequence, not serializable).
 * - `SINK_REJECTED` — the destination refused records permanently and no dead-letter handler was given.
 * - `SINK_RETRIES_EXHAUSTED` — a retryable failure persisted beyond `retry.maxAttempts`.
 * - `SINK_DEAD_LETTER_FAILED` — the dead-letter handler threw.
 * - `SINK_UNSUPPORTED` — the destination's version lacks a required feature.
 *
 * @since 0.1.0
 */
export type SinkErrorCode =
  | "SINK_CLOSED"
  | "SINK_INVALID_OPTIONS"
  | "SINK_INVALID_IDENTIFIER"
  | "SINK_INVALID_RECORD"
  | "SINK_REJECTED"
  | "SINK_RETRIES_EXHAUSTED"
  | "SINK_DEAD_LETTER_FAILED"
  | "SINK_UNSUPPORTED";

/**
 * The error class of `@sluice/sinks`. Carries a stable {@link SinkErrorCode},
 * the destination error as `cause`, and `retryable`.
 *
 * @example
 * ```ts
 * try { await sink.flush() } catch (err) {
 *   if (SinkError.isInstance(err) && err.code === "SINK_REJECTED") alert(err);
 * }
 * ```
 * @since 0.1.0
 */
export class SinkError extends SluiceError {
  declare readonly code: SinkErrorCode;

  /**
   * @param code - stable error code
   * @param message - what was wrong, with the offending value, and what to do
   * @param options - `cause` and `retryable`
   */
  constructor(code: SinkErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(code, message, options);
    this.name = "SinkError";
  }

  /**
   * True for any `SinkError` from any installed copy of this package.
   *
   * @param value - anything
   * @returns whether `value` is a sink error
   */
  static override isInstance(value: unknown): value is SinkError {
    return (
      SluiceError.isInstance(value) &&
      typeof value.code === "string" &&
      value.code.startsWith("SINK_")
    );
  }
}
