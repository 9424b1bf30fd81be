import { SluiceError, type SluiceErrorOptions } from "@sluice/schema";

/**
 * Stable codes carried by {@link StateError}.
 *
 * - `STATE_INVALID_OPTIONS` — `openStateStore` options are missing or malformed.
 * - `STATE_INVALID_ARGUMENT` — a key, partition, window bound or offset passed to a method is malformed.
 * - `STATE_CLOSED` — the store was closed (or is closing) when the call was made.
 * - `STATE_LOCKED` — another process holds the store directory (retryable).
 * - `STATE_CORRUPT` — the store on disk is corrupt or not a Sluice state store.
 * - `STATE_OPEN_FAILED` — the directory could not be opened for another reason (permissions, missing disk).
 * - `STATE_IO_FAILED` — a read from disk failed (retryable).
 * - `STATE_CHECKPOINT_FAILED` — the checkpoint batch could not be written (disk full, I/O error); the previous checkpoint is intact and every change stays pending (retryable).
 * - `STATE_CHANGELOG_FAILED` — the changelog writer hook failed; nothing was written locally (retryable).
 * - `STATE_CODEC_FAILED` — the value codec could not encode or decode a value.
 * - `STATE_RESTORE_FAILED` — restoring a partition from its changelog topic failed (retryable).
 *
 * @since 0.1.0
 */
export type StateErrorCode =
  | "STATE_INVALID_OPTIONS"
  | "STATE_INVALID_ARGUMENT"
  | "STATE_CLOSED"
  | "STATE_LOCKED"
  | "STATE_CORRUPT"
  | "STATE_OPEN_FAILED"
  | "STATE_IO_FAILED"
  | "STATE_CHECKPOINT_FAILED"
  | "STATE_CHANGELOG_FAILED"
  | "STATE_CODEC_FAILED"
  | "STATE_RESTORE_FAILED";

const RETRYABLE: ReadonlySet<StateErrorCode> = new Set([
  "STATE_LOCKED",
  "STATE_IO_FAILED",
  "STATE_CHECKPOINT_FAILED",
  "STATE_CHANGELOG_FAILED",
  "STATE_RESTORE_FAILED",
]);

/**
 * The one error class of `@sluice/state`. Every failure carries a stable
 * {@link StateErrorCode}; `retryable` is set for transient conditions (a
 * locked directory, a full disk, a broker hiccup during restore).
 *
 * @example
 * ```ts
 * try { await store.checkpoint({ partition: 0, sourceOffset: "42", streamTime }) }
 * catch (err) {
 *   if (StateError.isInstance(err) && err.code === "STATE_CHECKPOINT_FAILED") {
 *     // previous checkpoint is intact; changes are still pending: retry later
 *   }
 * }
 * ```
 * @since 0.1.0
 */
export class StateError extends SluiceError {
  declare readonly code: StateErrorCode;

  /**
   * @param code - stable error code
   * @param message - what was wrong, with the offending value, and what to do
   * @param options - `cause`, and `retryable` to override the code's default
   */
  constructor(code: StateErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(code, message, { ...options, retryable: options.retryable ?? RETRYABLE.has(code) });
    this.name = "StateError";
  }

  /**
   * True for a {@link StateError} from any installed copy of this package.
   *
   * @param value - anything caught
   * @returns whether `value` is a state error
   */
  static override isInstance(value: unknown): value is StateError {
    return (
      SluiceError.isInstance(value) &&
      typeof value.code === "string" &&
      value.code.startsWith("STATE_")
    );
  }
}
