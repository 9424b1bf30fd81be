import { SluiceError, type SluiceErrorOptions } from "@sluice/schema";

/**
 * Stable codes of {@link ObservabilityError}.
 *
 * - `OBSERVABILITY_INVALID_OPTIONS` — an options object failed validation; the message names the option and the value.
 * - `OBSERVABILITY_DUPLICATE_METRICS` — the registry already holds a metric with one of the names `createMetrics` registers.
 * - `OBSERVABILITY_METRICS_CLOSED` — a {@link Metrics} handle was used after `close()`.
 * - `OBSERVABILITY_READINESS_CLOSED` — a {@link Readiness} tracker was used after `close()`.
 * - `OBSERVABILITY_LISTEN_FAILED` — the server could not bind its port (in use, not permitted); retryable.
 *
 * @since 0.1.0
 */
export type ObservabilityErrorCode =
  | "OBSERVABILITY_INVALID_OPTIONS"
  | "OBSERVABILITY_DUPLICATE_METRICS"
  | "OBSERVABILITY_METRICS_CLOSED"
  | "OBSERVABILITY_READINESS_CLOSED"
  | "OBSERVABILITY_LISTEN_FAILED";

/**
 * The one error class of `@sluice/observability`. Extends `SluiceError`, so
 * `SluiceError.isInstance(err)` holds and `err.code` is one of
 * {@link ObservabilityErrorCode}.
 *
 * @example
 * ```ts
 * try { createMetrics({ registry, prefix: "bad prefix" }) } catch (err) {
 *   if (ObservabilityError.isInstance(err)) console.error(err.code);
 * }
 * ```
 * @since 0.1.0
 */
export class ObservabilityError extends SluiceError {
  declare readonly code: ObservabilityErrorCode;

  /**
   * @param code - a stable {@link ObservabilityErrorCode}
   * @param message - what was wrong, with the offending value, and what to do
   * @param options - `cause` and `retryable`
   */
  constructor(code: ObservabilityErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(code, message, options);
    this.name = "ObservabilityError";
  }

  /**
   * True for an {@link ObservabilityError} from any installed copy of this package.
   *
   * @param value - anything caught
   * @returns whether `value` is an observability error
   */
  static override isInstance(value: unknown): value is ObservabilityError {
    return (
      SluiceError.isInstance(value) &&
      typeof value.code === "string" &&
      value.code.startsWith("OBSERVABILITY_")
    );
  }
}
