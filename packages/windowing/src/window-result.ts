import { type Duration, parseDuration } from "@sluice/schema";
import { WindowingError } from "./windowing-error.js";

/**
 * One emitted window aggregate (contract shared with `@sluice/sinks`).
 *
 * `emitSeq` counts the emissions of one `(key, windowStart, windowEnd)`
 * from 0; `id` is {@link windowResultId} of the four, so a replay after a
 * crash re-sends the same identities and a sink can upsert on `id`.
 *
 * @typeParam V - the aggregate value
 * @since 0.1.0
 */
export interface WindowResult<V> {
  key: string;
  /** Epoch ms, inclusive. */
  windowStart: number;
  /** Epoch ms, exclusive. */
  windowEnd: number;
  value: V;
  /** True for the last emission of the window (it has closed). */
  final: boolean;
  emitSeq: number;
  /** Source partition whose stream produced the result. */
  partition: number;
  id: string;
  /**
   * Present (and `true`) only on a retraction: the window was merged into
   * another session after results of it had been emitted, so it no longer
   * exists. A retraction has `value: null` and `final: false`, and its own
   * `emitSeq` (one past the window's last result) and `id`; downstream
   * deletes the window's row (see {@link isRetraction}).
   */
  retracted?: true;
}

/**
 * A {@link WindowResult} that withdraws a window: emitted, with session
 * windows and emit `'update'` or `{ everyMs }`, for a session that had
 * results emitted and was then merged into another one. It comes just before
 * the first result of the session that replaced it, in the same commit.
 *
 * @since 0.2.0
 */
export interface WindowRetraction extends Omit<WindowResult<never>, "value" | "retracted"> {
  value: null;
  final: false;
  retracted: true;
}

/**
 * Whether a result is a retraction (the window no longer exists and its row
 * should be deleted) rather than a value.
 *
 * @param result - a result read from a job's output
 * @returns true for a retraction (its `value` is then `null`, see {@link WindowRetraction})
 * @example
 * ```ts
 * for (const r of results) {
 *   if (isRetraction(r)) table.delete(`${r.key}|${r.windowStart}|${r.windowEnd}`);
 *   else table.upsert(`${r.key}|${r.windowStart}|${r.windowEnd}`, r.value);
 * }
 * ```
 * @since 0.2.0
 */
export function isRetraction<R extends { retracted?: boolean | undefined }>(
  result: R,
): result is R & { retracted: true } {
  return result.retracted === true;
}

/**
 * The deterministic identity of a result: `windowStart:windowEnd:emitSeq:key`.
 * The numbers come first so the key may contain any character.
 *
 * @param key - the window key
 * @param windowStart - epoch ms
 * @param windowEnd - epoch ms
 * @param emitSeq - emission number within the window
 * @returns the identity string
 * @example
 * ```ts
 * windowResultId("u1", 0, 60000, 0) // "0:60000:0:u1"
 * ```
 * @since 0.1.0
 */
export function windowResultId(
  key: string,
  windowStart: number,
  windowEnd: number,
  emitSeq: number,
): string {
  return `${windowStart}:${windowEnd}:${emitSeq}:${key}`;
}

/**
 * A record that arrived for windows that had already closed. It is never
 * silently dropped: it goes to the late output and is counted.
 *
 * @since 0.1.0
 */
export interface LateRecord<T> {
  key: string;
  value: T;
  /** The record's event time (epoch ms). */
  timestamp: number;
  /** Stream time of the partition when the record arrived. */
  streamTime: number;
  partition: number;
  /** Source offset, when the record came from Kafka. */
  offset?: string;
  /** Starts of the closed windows the record missed (empty for sliding and session windows). */
  closedWindowStarts: number[];
}

/**
 * When results are emitted: `'final'` once when a window closes;
 * `'update'` on every change and a final result at close; `{ everyMs }`
 * early results for changed windows each time stream time crosses a multiple
 * of `everyMs`, then a final result at close.
 *
 * @since 0.1.0
 */
export type EmitMode = "final" | "update" | { everyMs: Duration };

/**
 * Options of `emit(mode, options)`.
 *
 * @since 0.2.0
 */
export interface EmitOptions {
  /**
   * With session windows and emit `'update'` or `{ everyMs }`: when a
   * session that already had results emitted is merged into another, emit a
   * retraction for it ({@link WindowRetraction}), so downstream tables drop
   * the row of a session that no longer exists. Has no effect with other
   * windows or with `'final'` (nothing is emitted before a window closes).
   *
   * @defaultValue true
   */
  retractions?: boolean;
}

/** @internal normalized emit mode. */
export type ResolvedEmit =
  | { kind: "final" }
  | { kind: "update" }
  | { kind: "every"; everyMs: number };

/** @internal */
export function resolveEmit(mode: EmitMode): ResolvedEmit {
  if (mode === "final") return { kind: "final" };
  if (mode === "update") return { kind: "update" };
  if (typeof mode === "object" && mode !== null && "everyMs" in mode) {
    let everyMs: number;
    try {
      everyMs = parseDuration(mode.everyMs, "everyMs");
    } catch (err) {
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", (err as Error).message, { cause: err });
    }
    if (everyMs <= 0)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "emit everyMs must be greater than 0");
    return { kind: "every", everyMs };
  }
  throw new WindowingError(
    "WINDOWING_INVALID_OPTIONS",
    `emit must be 'final', 'update' or { everyMs }; got ${JSON.stringify(mode)}`,
  );
}
