const marker = Symbol.for("sluice.error");

/**
 * Options accepted by every Sluice error.
 *
 * @since 0.1.0
 */
export interface SluiceErrorOptions {
  /** The underlying error, kept for diagnosis. */
  cause?: unknown;
  /** Whether retrying the same operation may succeed. @defaultValue false */
  retryable?: boolean;
}

/**
 * Base class of every error thrown by a Sluice package. Each carries a stable
 * string `code` (for example `SCHEMA_INVALID_EVENT`), an optional `cause` and a
 * `retryable` flag. Use {@link SluiceError.isInstance} rather than
 * `instanceof`: two installed copies of a package have two classes, but one
 * brand.
 *
 * @example
 * ```ts
 * try { await producer.send(event) } catch (err) {
 *   if (SluiceError.isInstance(err) && err.retryable) retryLater(event);
 * }
 * ```
 * @since 0.1.0
 */
export class SluiceError extends Error {
  /** Stable, documented error code; never localized or reworded. */
  readonly code: string;
  /** Whether retrying the same operation may succeed. */
  readonly retryable: boolean;
  /** @internal Brand shared by every copy of the package. */
  readonly [marker] = true;

  constructor(code: string, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SluiceError";
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  /** True for any error created by any copy of a Sluice package. */
  static isInstance(value: unknown): value is SluiceError {
    return typeof value === "object" && value !== null && (value as never)[marker] === true;
  }
}
