import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Aggregator,
  aggregator,
  avg,
  combine,
  count,
  countDistinct,
  latest,
  max,
  min,
  quantiles,
  sum,
  topK,
} from "../src/index.js";

function fold<In, A, O>(agg: Aggregator<In, A, O>, xs: readonly In[]): A {
  return xs.reduce((a, x) => agg.add(a, x), agg.init());
}
function roundTrip<In, A, O>(agg: Aggregator<In, A, O>, acc: A): A {
  const data = JSON.parse(JSON.stringify(agg.encode ? agg.encode(acc) : acc));
  return agg.decode ? agg.decode(data) : (data as A);
}

describe("built-in aggregations", () => {
  it("count, sum, min, max, avg, latest fold and merge like the exact answer", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 })),
        fc.array(fc.integer({ min: -1000, max: 1000 })),
        (a, b) => {
          const all = [...a, ...b];
          const id = (x: number) => x;
          for (const [agg, expected] of [
            [count<number>(), all.length],
            [sum(id), all.reduce((s, x) => s + x, 0)],
            [min(id), all.length ? Math.min(...all) : null],
            [max(id), all.length ? Math.max(...all) : null],
            [avg(id), all.length ? all.reduce((s, x) => s + x, 0) / all.length : null],
          ] as const) {
            const g = agg as Aggregator<number, unknown, unknown>;
            expect(g.result(fold(g, all))).toEqual(expected);
            const merged = g.merge?.(roundTrip(g, fold(g, a)), roundTrip(g, fold(g, b)));
            expect(g.result(merged)).toEqual(expected);
          }
        },
      ),
    );
  });

  it("latest keeps the value with the greatest time", () => {
    const agg = latest(
      (e: { t: number; v: string }) => e.v,
      (e) => e.t,
    );
    const acc = fold(agg, [
      { t: 5, v: "b" },
      { t: 9, v: "c" },
      { t: 1, v: "a" },
    ]);
    expect(agg.result(acc)).toBe("c");
    expect(agg.result(agg.init())).toBeNull();
    expect(agg.result(agg.merge?.(fold(agg, [{ t: 10, v: "x" }]), acc) ?? null)).toBe("x");
  });

  it("countDistinct is exact for small sets and within 3 standard errors for large ones", () => {
    const agg = countDistinct((x: string) => x);
    expect(agg.result(fold(agg, ["a", "b", "a", "c"]))).toBe(3);
    const n = 50_000;
    const a = fold(
      agg,
      Array.from({ length: n }, (_, i) => `user-${i}`),
    );
    const b = fold(
      agg,
      Array.from({ length: n }, (_, i) => `user-${i + n / 2}`),
    );
    const est = agg.result(agg.merge?.(roundTrip(agg, a), b) as Uint8Array);
    const stderr = 1.04 / Math.sqrt(4096);
    expect(Math.abs(est - 1.5 * n) / (1.5 * n)).toBeLessThan(3 * stderr);
    expect(() => countDistinct((x) => x, { precision: 3 })).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
  });

  it("quantiles are within the relative accuracy of the exact rank value, also after merge and state round trip", () => {
    const agg = quantiles((x: number) => x, { quantiles: [0.5, 0.99], relativeAccuracy: 0.01 });
    const xs = Array.from({ length: 10_000 }, (_, i) => 1 + ((i * 7919) % 10_000));
    const a = roundTrip(agg, fold(agg, xs.slice(0, 5000)));
    const merged = agg.merge?.(a, fold(agg, xs.slice(5000)));
    const out = agg.result(merged as never);
    const sorted = [...xs].sort((p, q) => p - q);
    for (const q of [0.5, 0.99]) {
      const exact = sorted[Math.floor(q * (sorted.length - 1))] as number;
      expect(Math.abs((out[String(q)] as number) - exact) / exact).toBeLessThanOrEqual(0.0101);
    }
    expect(agg.result(agg.init())).toEqual({ "0.5": null, "0.99": null });
    expect(() => quantiles((x: number) => x, { quantiles: [1.5] })).toThrow(/within 0..1/);
    expect(() => quantiles((x: number) => x, { relativeAccuracy: 0 })).toThrow(/relativeAccuracy/);
  });

  it("topK is exact below capacity, ordered by count then value, and merges", () => {
    const agg = topK((x: string) => x, 2);
    const acc = fold(agg, ["a", "b", "b", "c", "c", "c", "d"]);
    expect(agg.result(acc)).toEqual([
      { value: "c", count: 3 },
      { value: "b", count: 2 },
    ]);
    const m = agg.merge?.(acc, fold(agg, ["a", "a", "a"])) as Record<string, number>;
    expect(agg.result(m)).toEqual([
      { value: "a", count: 4 },
      { value: "c", count: 3 },
    ]);
    const small = topK((x: string) => x, 1, { capacity: 2 });
    // Space-Saving: the heavy hitter survives the eviction of rare values
    expect(small.result(fold(small, ["h", "x", "h", "y", "h", "z", "h"]))[0]?.value).toBe("h");
    expect(() => topK((x) => x, 0)).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
  });

  it("combine builds an object result and keeps merge only when every part has one", () => {
    const agg = combine({ n: count<number>(), s: sum((x: number) => x) });
    expect(agg.result(fold(agg, [1, 2, 3]))).toEqual({ n: 3, s: 6 });
    const noMerge = combine({
      n: count<number>(),
      c: aggregator({ init: () => 0, add: (a: number) => a, result: (a) => a }),
    });
    expect(noMerge.merge).toBeUndefined();
    expect(() => combine({})).toThrow(/at least one/);
    expect(() => combine({ x: 5 } as never)).toThrow(/'x' is not an aggregator/);
    expect(() => aggregator({} as never)).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
  });
});
