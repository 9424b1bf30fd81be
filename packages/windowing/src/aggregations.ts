import { DDSketch } from "@datadog/sketches-js";
import { hllAdd, hllCreate, hllEstimate, hllMerge } from "./internal/hyperloglog.js";
import { WindowingError } from "./windowing-error.js";

/**
 * A windowed aggregation: `init` makes an empty accumulator, `add` folds one
 * record into it, `merge` combines two accumulators (required for session
 * windows), `result` turns an accumulator into the emitted value. `add` and
 * `merge` may mutate and return their first argument.
 *
 * Accumulators are stored in the state store and changelog: they must be
 * plain JSON values, or the aggregator supplies `encode`/`decode` to convert.
 *
 * @typeParam In - the record type after `map`
 * @typeParam Acc - the accumulator
 * @typeParam Out - the emitted value
 * @example
 * ```ts
 * const spend: Aggregator<Purchase, number, number> = {
 *   init: () => 0, add: (a, p) => a + p.amount, merge: (a, b) => a + b, result: (a) => a,
 * };
 * ```
 * @since 0.1.0
 */
export interface Aggregator<In, Acc, Out> {
  init(): Acc;
  add(acc: Acc, value: In): Acc;
  merge?(a: Acc, b: Acc): Acc;
  result(acc: Acc): Out;
  /** Converts an accumulator to a JSON value for state. @defaultValue identity */
  encode?(acc: Acc): unknown;
  /** Inverse of `encode`. @defaultValue identity */
  decode?(data: unknown): Acc;
}

/** Any aggregator, whatever its accumulator. @since 0.1.0 */
// biome-ignore lint/suspicious/noExplicitAny: the accumulator type is private to each aggregator
export type AnyAggregator<In, Out = unknown> = Aggregator<In, any, Out>;

/** The value an aggregation spec yields: one aggregator's output, or an object of them. @since 0.1.0 */
export type AggregateResult<S> =
  S extends Aggregator<infer _I, infer _A, infer O>
    ? O
    : { [K in keyof S]: S[K] extends Aggregator<infer _I, infer _A, infer O> ? O : never };

/** One aggregator, or an object of named aggregators combined into one. @since 0.1.0 */
export type AggregationSpec<In> = AnyAggregator<In> | Record<string, AnyAggregator<In>>;

function isAggregator(v: unknown): v is AnyAggregator<unknown> {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as AnyAggregator<unknown>).init === "function" &&
    typeof (v as AnyAggregator<unknown>).add === "function" &&
    typeof (v as AnyAggregator<unknown>).result === "function"
  );
}

/**
 * Turns an {@link AggregationSpec} into one aggregator. An object of
 * aggregators becomes one whose result is an object with the same keys.
 *
 * @param spec - an aggregator or `{ name: aggregator, ... }`
 * @returns a single aggregator
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` when an entry is not an aggregator
 * @example
 * ```ts
 * const agg = combine({ events: count(), spend: sum((e) => e.amount) });
 * ```
 * @since 0.1.0
 */
export function combine<In>(spec: AggregationSpec<In>): AnyAggregator<In> {
  if (isAggregator(spec)) return spec;
  if (typeof spec !== "object" || spec === null) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      "aggregate() needs an aggregator or an object of aggregators",
    );
  }
  const entries = Object.entries(spec);
  if (entries.length === 0) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      "aggregate({}) needs at least one aggregator",
    );
  }
  for (const [name, agg] of entries) {
    if (!isAggregator(agg)) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `aggregate(): '${name}' is not an aggregator (needs init, add and result)`,
      );
    }
  }
  const canMerge = entries.every(([, a]) => typeof a.merge === "function");
  // Hot path (every record, every emission): plain loops over parallel
  // arrays, no intermediate arrays per call.
  const names = entries.map(([n]) => n);
  const aggs = entries.map(([, a]) => a);
  const k = names.length;
  const agg: AnyAggregator<In> = {
    init: () => {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < k; i++) o[names[i] as string] = (aggs[i] as AnyAggregator<In>).init();
      return o;
    },
    add: (acc: Record<string, unknown>, v: In) => {
      for (let i = 0; i < k; i++) {
        const n = names[i] as string;
        acc[n] = (aggs[i] as AnyAggregator<In>).add(acc[n], v);
      }
      return acc;
    },
    result: (acc: Record<string, unknown>) => {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < k; i++) {
        const n = names[i] as string;
        o[n] = (aggs[i] as AnyAggregator<In>).result(acc[n]);
      }
      return o;
    },
    encode: (acc: Record<string, unknown>) => {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < k; i++) {
        const n = names[i] as string;
        const a = aggs[i] as AnyAggregator<In>;
        o[n] = a.encode ? a.encode(acc[n]) : acc[n];
      }
      return o;
    },
    decode: (data: unknown) => {
      const d = data as Record<string, unknown>;
      const o: Record<string, unknown> = {};
      for (let i = 0; i < k; i++) {
        const n = names[i] as string;
        const a = aggs[i] as AnyAggregator<In>;
        o[n] = a.decode ? a.decode(d[n]) : d[n];
      }
      return o;
    },
  };
  if (canMerge) {
    agg.merge = (x: Record<string, unknown>, y: Record<string, unknown>) => {
      for (let i = 0; i < k; i++) {
        const n = names[i] as string;
        x[n] = (aggs[i] as AnyAggregator<In>).merge?.(x[n], y[n]);
      }
      return x;
    };
  }
  return agg;
}

type Extract<In, T> = (value: In) => T;

/**
 * Number of records in the window.
 *
 * @returns an aggregator yielding a count
 * @example
 * ```ts
 * job.aggregate(count())
 * ```
 * @since 0.1.0
 */
export function count<In = unknown>(): Aggregator<In, number, number> {
  return { init: () => 0, add: (a) => a + 1, merge: (a, b) => a + b, result: (a) => a };
}

/**
 * Sum of a numeric field.
 *
 * @param extract - reads the number from a record
 * @returns an aggregator yielding the sum (0 for an empty window)
 * @example
 * ```ts
 * job.aggregate(sum((e) => e.amount))
 * ```
 * @since 0.1.0
 */
export function sum<In>(extract: Extract<In, number>): Aggregator<In, number, number> {
  return { init: () => 0, add: (a, v) => a + extract(v), merge: (a, b) => a + b, result: (a) => a };
}

/**
 * Smallest value of a numeric field.
 *
 * @param extract - reads the number from a record
 * @returns an aggregator yielding the minimum, or `null` for an empty window
 * @example
 * ```ts
 * job.aggregate(min((e) => e.latencyMs))
 * ```
 * @since 0.1.0
 */
export function min<In>(
  extract: Extract<In, number>,
): Aggregator<In, number | null, number | null> {
  return {
    init: () => null,
    add: (a, v) => {
      const x = extract(v);
      return a === null || x < a ? x : a;
    },
    merge: (a, b) => (a === null ? b : b === null ? a : Math.min(a, b)),
    result: (a) => a,
  };
}

/**
 * Largest value of a numeric field.
 *
 * @param extract - reads the number from a record
 * @returns an aggregator yielding the maximum, or `null` for an empty window
 * @example
 * ```ts
 * job.aggregate(max((e) => e.latencyMs))
 * ```
 * @since 0.1.0
 */
export function max<In>(
  extract: Extract<In, number>,
): Aggregator<In, number | null, number | null> {
  return {
    init: () => null,
    add: (a, v) => {
      const x = extract(v);
      return a === null || x > a ? x : a;
    },
    merge: (a, b) => (a === null ? b : b === null ? a : Math.max(a, b)),
    result: (a) => a,
  };
}

/**
 * Arithmetic mean of a numeric field.
 *
 * @param extract - reads the number from a record
 * @returns an aggregator yielding the mean, or `null` for an empty window
 * @example
 * ```ts
 * job.aggregate(avg((e) => e.amount))
 * ```
 * @since 0.1.0
 */
export function avg<In>(
  extract: Extract<In, number>,
): Aggregator<In, { s: number; n: number }, number | null> {
  return {
    init: () => ({ s: 0, n: 0 }),
    add: (a, v) => {
      a.s += extract(v);
      a.n += 1;
      return a;
    },
    merge: (a, b) => ({ s: a.s + b.s, n: a.n + b.n }),
    result: (a) => (a.n === 0 ? null : a.s / a.n),
  };
}

/**
 * The value of the record with the greatest event time (ties: the one
 * processed last). Needs the event time, so it reads it from the record via
 * `time`.
 *
 * @param extract - reads the value from a record
 * @param time - reads the record's time (epoch ms) used to order records
 * @returns an aggregator yielding the latest value, or `null` for an empty window
 * @example
 * ```ts
 * job.aggregate(latest((e) => e.page, (e) => e.ts))
 * ```
 * @since 0.1.0
 */
export function latest<In, T>(
  extract: Extract<In, T>,
  time: Extract<In, number>,
): Aggregator<In, { t: number; v: T } | null, T | null> {
  return {
    init: () => null,
    add: (a, r) => {
      const t = time(r);
      return a === null || t >= a.t ? { t, v: extract(r) } : a;
    },
    merge: (a, b) => (a === null ? b : b === null ? a : b.t >= a.t ? b : a),
    result: (a) => (a === null ? null : a.v),
  };
}

/**
 * Approximate number of distinct values, by HyperLogLog with `2^precision`
 * one-byte registers. Relative standard error ≈ `1.04 / sqrt(2^precision)`:
 * 1.6 % at the default precision 12 (4 KiB of state per window); small
 * cardinalities (below ~`2.5 · 2^precision`) use linear counting and are
 * near exact.
 *
 * @param extract - reads the value to count; it is stringified with `String()`
 * @param opts - `precision` between 4 and 16
 * @returns an aggregator yielding the estimated distinct count
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for a precision outside 4..16
 * @defaultValue precision = 12
 * @example
 * ```ts
 * job.aggregate(countDistinct((e) => e.page))
 * ```
 * @since 0.1.0
 */
export function countDistinct<In>(
  extract: Extract<In, unknown>,
  opts: { precision?: number } = {},
): Aggregator<In, Uint8Array, number> {
  const p = opts.precision ?? 12;
  if (!Number.isInteger(p) || p < 4 || p > 16) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      `countDistinct precision must be an integer 4..16; got ${p}`,
    );
  }
  return {
    init: () => hllCreate(p),
    add: (a, v) => {
      hllAdd(a, p, String(extract(v)));
      return a;
    },
    merge: (a, b) => hllMerge(a, b),
    result: (a) => hllEstimate(a),
    encode: (a) => Buffer.from(a).toString("base64"),
    decode: (d) => new Uint8Array(Buffer.from(d as string, "base64")),
  };
}

/**
 * Quantiles of a numeric field by DDSketch (`@datadog/sketches-js`): every
 * reported quantile is within `relativeAccuracy` (relative error) of a true
 * value at that rank. The sketch is mergeable, so it works for every window
 * type.
 *
 * @param extract - reads the number from a record
 * @param opts - `quantiles` to report (each in 0..1), `relativeAccuracy`
 * @returns an aggregator yielding `{ "0.5": v, "0.99": v, ... }` (`null` values for an empty window)
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for a quantile outside 0..1 or an accuracy outside (0, 1)
 * @defaultValue quantiles = [0.5, 0.9, 0.99]; relativeAccuracy = 0.01
 * @example
 * ```ts
 * job.aggregate(quantiles((e) => e.latencyMs, { quantiles: [0.5, 0.99] }))
 * ```
 * @since 0.1.0
 */
export function quantiles<In>(
  extract: Extract<In, number>,
  opts: { quantiles?: readonly number[]; relativeAccuracy?: number } = {},
): Aggregator<In, DDSketch, Record<string, number | null>> {
  const qs = opts.quantiles ?? [0.5, 0.9, 0.99];
  const relativeAccuracy = opts.relativeAccuracy ?? 0.01;
  for (const q of qs) {
    if (!(q >= 0 && q <= 1)) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `quantiles must be within 0..1; got ${q}`,
      );
    }
  }
  if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      `relativeAccuracy must be within (0, 1); got ${relativeAccuracy}`,
    );
  }
  return {
    init: () => new DDSketch({ relativeAccuracy }),
    add: (a, v) => {
      a.accept(extract(v));
      return a;
    },
    merge: (a, b) => {
      a.merge(b);
      return a;
    },
    result: (a) =>
      Object.fromEntries(
        qs.map((q) => [String(q), a.count === 0 ? null : a.getValueAtQuantile(q)]),
      ),
    encode: (a) => encodeSketch(a),
    decode: (d) => decodeSketch(d as EncodedSketch, relativeAccuracy),
  };
}

interface EncodedStore {
  bins: number[];
  count: number;
  minKey: number;
  maxKey: number;
  offset: number;
}

interface EncodedSketch {
  p: EncodedStore;
  n: EncodedStore;
  zeroCount: number;
  count: number;
  min: number | null;
  max: number | null;
  sum: number;
}

// Exact state of a DDSketch as plain JSON (its protobuf form re-derives the
// mapping and loses min/max, so a restored sketch could answer differently).
function encodeStore(s: DDSketch["store"]): EncodedStore {
  return {
    bins: [...s.bins],
    count: s.count,
    minKey: s.minKey,
    maxKey: s.maxKey,
    offset: s.offset,
  };
}

function encodeSketch(a: DDSketch): EncodedSketch {
  return {
    p: encodeStore(a.store),
    n: encodeStore(a.negativeStore),
    zeroCount: a.zeroCount,
    count: a.count,
    min: Number.isFinite(a.min) ? a.min : null,
    max: Number.isFinite(a.max) ? a.max : null,
    sum: a.sum,
  };
}

function decodeSketch(d: EncodedSketch, relativeAccuracy: number): DDSketch {
  const s = new DDSketch({ relativeAccuracy });
  Object.assign(s.store, d.p);
  Object.assign(s.negativeStore, d.n);
  s.zeroCount = d.zeroCount;
  s.count = d.count;
  s.min = d.min ?? Number.POSITIVE_INFINITY;
  s.max = d.max ?? Number.NEGATIVE_INFINITY;
  s.sum = d.sum;
  return s;
}

/**
 * The `k` most frequent values, with counts, by the Space-Saving algorithm
 * over `capacity` counters: exact while a window has at most `capacity`
 * distinct values; beyond that each reported count overestimates by at most
 * `records / capacity`.
 *
 * @param extract - reads the value; stringified with `String()`
 * @param k - how many to report
 * @param opts - `capacity` (at least `k`)
 * @returns an aggregator yielding `[{ value, count }]`, most frequent first (ties by value)
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for `k < 1` or `capacity < k`
 * @defaultValue capacity = max(100, 10 · k)
 * @example
 * ```ts
 * job.aggregate(topK((e) => e.page, 10))
 * ```
 * @since 0.1.0
 */
export function topK<In>(
  extract: Extract<In, unknown>,
  k: number,
  opts: { capacity?: number } = {},
): Aggregator<In, Record<string, number>, { value: string; count: number }[]> {
  const capacity = opts.capacity ?? Math.max(100, 10 * k);
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(capacity) || capacity < k) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      `topK needs an integer k >= 1 and capacity >= k; got k=${k}, capacity=${capacity}`,
    );
  }
  const trim = (counts: Record<string, number>): Record<string, number> => {
    const keys = Object.keys(counts);
    if (keys.length <= capacity) return counts;
    const kept = keys
      .sort((a, b) => (counts[b] as number) - (counts[a] as number) || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, capacity);
    return Object.fromEntries(kept.map((x) => [x, counts[x] as number]));
  };
  return {
    init: () => ({}),
    add: (a, v) => {
      const key = String(extract(v));
      const c = a[key];
      if (c !== undefined) {
        a[key] = c + 1;
        return a;
      }
      const keys = Object.keys(a);
      if (keys.length < capacity) {
        a[key] = 1;
        return a;
      }
      // Space-Saving: replace the smallest counter, inheriting its count.
      let minKey = keys[0] as string;
      for (const x of keys) if ((a[x] as number) < (a[minKey] as number)) minKey = x;
      const inherited = a[minKey] as number;
      delete a[minKey];
      a[key] = inherited + 1;
      return a;
    },
    merge: (a, b) => {
      const out: Record<string, number> = { ...a };
      for (const [x, c] of Object.entries(b)) out[x] = (out[x] ?? 0) + c;
      return trim(out);
    },
    result: (a) =>
      Object.entries(a)
        .sort(([va, ca], [vb, cb]) => cb - ca || (va < vb ? -1 : va > vb ? 1 : 0))
        .slice(0, k)
        .map(([value, c]) => ({ value, count: c })),
  };
}

/**
 * A custom aggregation, checked up front.
 *
 * @param agg - `{ init, add, merge?, result, encode?, decode? }`
 * @returns the same aggregator, validated
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` when `init`, `add` or `result` is missing
 * @example
 * ```ts
 * job.aggregate(aggregator({ init: () => [] as string[], add: (a, e) => [...a, e.page], merge: (a, b) => [...a, ...b], result: (a) => a }))
 * ```
 * @since 0.1.0
 */
export function aggregator<In, Acc, Out>(agg: Aggregator<In, Acc, Out>): Aggregator<In, Acc, Out> {
  if (!isAggregator(agg)) {
    throw new WindowingError(
      "WINDOWING_INVALID_OPTIONS",
      "aggregator() needs init, add and result functions",
    );
  }
  return agg;
}
