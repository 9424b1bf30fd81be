import { type Duration, parseDuration } from "@sluice/schema";
import type { PatternConfig } from "./internal/pattern-operator.js";
import { WindowingError } from "./windowing-error.js";

/**
 * A detected pattern: the events that formed it, in event-time order, each
 * with the name of the step it matched. Absent steps contribute no event.
 *
 * @typeParam T - the record type
 * @since 0.2.0
 */
export interface PatternMatch<T> {
  events: { step: string; timestamp: number; value: T }[];
}

/**
 * Options of {@link pattern}.
 *
 * @since 0.2.0
 */
export interface PatternOptions {
  /** Time bound from the first event of a match to its last (inclusive); for `notFollowedBy`, how long the absence is awaited. */
  within: Duration;
  /** How long out-of-order records are awaited: events are matched in event-time order once stream time has passed their time + grace. @defaultValue 0 */
  grace?: Duration;
}

function ms(value: Duration, name: string): number {
  try {
    return parseDuration(value, name);
  } catch (err) {
    throw new WindowingError("WINDOWING_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
}

/**
 * A sequence pattern over a keyed stream, built step by step and run with
 * `job.match(...)`.
 *
 * Semantics, per key and in event-time order: a match starts at an event
 * satisfying the first step; later events satisfying the next step extend
 * it, events that satisfy none are skipped; an optional step may be skipped
 * when the event satisfies the step after it. A match completes at its last
 * step, or — with {@link PatternBuilder.notFollowedBy} — once `within` has
 * passed since its first event with no event satisfying the absent step.
 * A partial match older than `within` is dropped. One partial match per key
 * at a time: while it is open, events that would start another are skipped.
 *
 * @typeParam T - the record type
 * @typeParam V - the result value (the {@link PatternMatch} unless `select` maps it)
 * @since 0.2.0
 */
export class PatternBuilder<T, V = PatternMatch<T>> {
  /** @internal type of the emitted value (never set at run time) */
  declare readonly valueType?: V;
  /** @internal */
  readonly steps: PatternConfig["steps"] = [];
  /** @internal */
  absent: PatternConfig["absent"];
  /** @internal */
  readonly withinMs: number;
  /** @internal */
  readonly graceMs: number;
  /** @internal */
  selectFn: ((m: PatternMatch<unknown>) => unknown) | undefined;

  /** @internal use {@link pattern} */
  constructor(opts: PatternOptions) {
    if (typeof opts !== "object" || opts === null || opts.within === undefined) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "pattern() needs { within } (e.g. '30m')",
      );
    }
    this.withinMs = ms(opts.within, "within");
    this.graceMs = ms(opts.grace ?? 0, "grace");
    if (this.withinMs <= 0)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "pattern within must be > 0");
  }

  private name(name: string): void {
    if (typeof name !== "string" || name.length === 0)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "a pattern step needs a name");
    if (this.steps.some((s) => s.name === name) || this.absent?.name === name) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `pattern step names must be unique; '${name}' is used twice`,
      );
    }
    if (this.absent) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "notFollowedBy(...) must be the last step of a pattern",
      );
    }
  }

  /**
   * Adds the next step.
   *
   * @param name - step name, carried by the matched event
   * @param where - predicate on the record
   * @param opts - `optional: true` lets a match skip this step (not for the first or last step)
   * @returns this builder
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for a duplicate name or a step after `notFollowedBy`
   * @example
   * ```ts
   * pattern<Ev>({ within: "30m" }).step("view", (e) => e.type === "page_view")
   * ```
   */
  step(name: string, where: (value: T) => boolean, opts: { optional?: boolean } = {}): this {
    this.name(name);
    if (typeof where !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", `step '${name}' needs a predicate`);
    this.steps.push({
      name,
      where: where as (v: unknown) => boolean,
      optional: opts.optional === true,
    });
    return this;
  }

  /**
   * Ends the pattern with an absence: the match completes only if no event
   * satisfying `where` follows the other steps within the bound (counted
   * from the first event) — e.g. cart abandonment.
   *
   * @param name - name of the absent step
   * @param where - predicate of the event that must not occur
   * @returns this builder
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` when set twice or without a step before
   * @example
   * ```ts
   * pattern<Ev>({ within: "30m" })
   *   .step("cart", (e) => e.type === "add_to_cart")
   *   .notFollowedBy("purchase", (e) => e.type === "purchase")
   * ```
   */
  notFollowedBy(name: string, where: (value: T) => boolean): this {
    this.name(name);
    if (this.steps.length === 0)
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "notFollowedBy(...) needs a step before it",
      );
    if (typeof where !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", `step '${name}' needs a predicate`);
    this.absent = { name, where: where as (v: unknown) => boolean };
    return this;
  }

  /**
   * Maps each match to the emitted value.
   *
   * @param fn - from the match to the result value
   * @returns this builder, typed by the new value
   * @example
   * ```ts
   * .select((m) => ({ cartAt: m.events[1]?.timestamp }))
   * ```
   */
  select<U>(fn: (match: PatternMatch<T>) => U): PatternBuilder<T, U> {
    if (typeof fn !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "select() needs a function");
    this.selectFn = fn as (m: PatternMatch<unknown>) => unknown;
    return this as unknown as PatternBuilder<T, U>;
  }

  /** @internal checks the pattern and returns the operator config */
  config(): PatternConfig {
    const first = this.steps[0];
    const last = this.steps[this.steps.length - 1];
    if (!first || !last) {
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "a pattern needs at least one step");
    }
    if (first.optional || last.optional) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "the first and the last step of a pattern cannot be optional",
      );
    }
    const cfg: PatternConfig = {
      steps: this.steps,
      withinMs: this.withinMs,
      graceMs: this.graceMs,
      select: (this.selectFn ?? ((m) => m)) as PatternConfig["select"],
    };
    if (this.absent) cfg.absent = this.absent;
    return cfg;
  }
}

/**
 * Starts a pattern; add steps with `step(...)`, optionally end with
 * `notFollowedBy(...)`, then run it with `job.match(pattern)`. Each match is
 * emitted once as a result whose `windowStart`/`windowEnd` span its events
 * and whose `id` (first event time, occurrence, key) is deterministic.
 *
 * @param opts - `within` (required) and `grace`
 * @returns a {@link PatternBuilder}
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for a missing or invalid duration
 * @example
 * ```ts
 * const abandoned = pattern<Ev>({ within: "30m", grace: "1m" })
 *   .step("view", (e) => e.type === "page_view")
 *   .step("cart", (e) => e.type === "add_to_cart")
 *   .notFollowedBy("purchase", (e) => e.type === "purchase");
 * ```
 * @since 0.2.0
 */
export function pattern<T>(opts: PatternOptions): PatternBuilder<T> {
  return new PatternBuilder<T>(opts);
}
