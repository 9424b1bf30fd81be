import { type Duration, parseDuration } from "@sluice/schema";
import { WindowingError } from "./windowing-error.js";

/**
 * A window definition, made by {@link tumbling}, {@link hopping},
 * {@link sliding} or {@link session}. All times are epoch milliseconds; every
 * window is the half-open interval `[windowStart, windowEnd)`.
 *
 * @since 0.1.0
 */
export type WindowSpec = TumblingWindow | HoppingWindow | SlidingWindow | SessionWindow;

/** @since 0.1.0 */
export interface TumblingWindow {
  readonly type: "tumbling";
  readonly sizeMs: number;
  readonly graceMs: number;
}
/** @since 0.1.0 */
export interface HoppingWindow {
  readonly type: "hopping";
  readonly sizeMs: number;
  readonly advanceMs: number;
  readonly graceMs: number;
}
/** @since 0.1.0 */
export interface SlidingWindow {
  readonly type: "sliding";
  readonly sizeMs: number;
  readonly graceMs: number;
}
/** @since 0.1.0 */
export interface SessionWindow {
  readonly type: "session";
  readonly gapMs: number;
  readonly graceMs: number;
}

function positive(value: Duration | undefined, name: string): number {
  if (value === undefined) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      `${name} is required, e.g. '1m' or 60000`,
    );
  }
  let ms: number;
  try {
    ms = parseDuration(value, name);
  } catch (err) {
    throw new WindowingError("WINDOWING_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
  if (ms <= 0) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      `${name} must be greater than 0; got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

function grace(value: Duration | undefined): number {
  if (value === undefined) return 0;
  try {
    return parseDuration(value, "grace");
  } catch (err) {
    throw new WindowingError("WINDOWING_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
}

/**
 * Fixed-size, non-overlapping windows aligned to the epoch: a record at time
 * `t` falls in `[t - t % size, t - t % size + size)`.
 *
 * @param opts - `size`: window length; `grace`: how long after the window end late records are still accepted
 * @returns a window definition for `job.window(...)`
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for a missing, zero or malformed duration
 * @defaultValue grace = 0
 * @example
 * ```ts
 * job.window(tumbling({ size: "1m", grace: "10s" }))
 * ```
 * @since 0.1.0
 */
export function tumbling(opts: { size: Duration; grace?: Duration }): TumblingWindow {
  return { type: "tumbling", sizeMs: positive(opts?.size, "size"), graceMs: grace(opts?.grace) };
}

/**
 * Fixed-size, overlapping windows that start every `advance`: a record falls
 * in every window `[s, s + size)` with `s` a non-negative multiple of
 * `advance` and `s <= t < s + size`.
 *
 * @param opts - `size`, `advance` (at most `size`), `grace`
 * @returns a window definition for `job.window(...)`
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` when `advance > size` or a duration is invalid
 * @defaultValue grace = 0
 * @example
 * ```ts
 * job.window(hopping({ size: "5m", advance: "1m" }))
 * ```
 * @since 0.1.0
 */
export function hopping(opts: {
  size: Duration;
  advance: Duration;
  grace?: Duration;
}): HoppingWindow {
  const sizeMs = positive(opts?.size, "size");
  const advanceMs = positive(opts?.advance, "advance");
  if (advanceMs > sizeMs) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      `advance (${advanceMs} ms) must not exceed size (${sizeMs} ms); use tumbling() for advance = size`,
    );
  }
  return { type: "hopping", sizeMs, advanceMs, graceMs: grace(opts.grace) };
}

/**
 * Sliding windows in the Kafka Streams sense: one window per distinct record
 * time `t` of a key, covering the `size` milliseconds that end at `t`, i.e.
 * `[t + 1 - size, t + 1)`. Each result is the aggregate of all records of the
 * key in that span. A record is late when it is more than `grace` behind
 * stream time.
 *
 * @param opts - `size`, `grace`
 * @returns a window definition for `job.window(...)`
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for an invalid duration
 * @defaultValue grace = 0
 * @example
 * ```ts
 * job.window(sliding({ size: "30s", grace: "5s" }))
 * ```
 * @since 0.1.0
 */
export function sliding(opts: { size: Duration; grace?: Duration }): SlidingWindow {
  return { type: "sliding", sizeMs: positive(opts?.size, "size"), graceMs: grace(opts?.grace) };
}

/**
 * Session windows: records of a key at most `gap` apart belong to one
 * session; a record bridging two sessions merges them (the aggregator needs
 * `merge`). A session `[first, last + 1)` closes when stream time passes
 * `last + gap + grace`. A record is late when it is more than `grace` behind
 * stream time (it might otherwise have to join a session already emitted).
 *
 * @param opts - `gap`: inactivity gap; `grace`
 * @returns a window definition for `job.window(...)`
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for an invalid duration
 * @defaultValue grace = 0
 * @example
 * ```ts
 * job.window(session({ gap: "30m" }))
 * ```
 * @since 0.1.0
 */
export function session(opts: { gap: Duration; grace?: Duration }): SessionWindow {
  return { type: "session", gapMs: positive(opts?.gap, "gap"), graceMs: grace(opts?.grace) };
}

/**
 * Starts of the fixed windows (tumbling or hopping) containing time `t`, in
 * ascending order.
 *
 * @internal
 */
export function fixedWindowStarts(spec: TumblingWindow | HoppingWindow, t: number): number[] {
  const advance = spec.type === "tumbling" ? spec.sizeMs : spec.advanceMs;
  const starts: number[] = [];
  let s = Math.floor(t / advance) * advance;
  while (s > t - spec.sizeMs && s >= 0) {
    starts.push(s);
    s -= advance;
  }
  return starts.reverse();
}
