import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  aggregator,
  count,
  createTestDriver,
  defineJob,
  type EmitMode,
  hopping,
  isRetraction,
  session,
  sliding,
  sum,
  tumbling,
  type WindowResult,
  type WindowSpec,
} from "../src/index.js";
import { closeTime, finalWindows, type OracleWindow, prefixValues, type Rec } from "./oracle.js";

type Out = { n: number; total: number; values: number[] };

const values = aggregator<{ v: number }, number[], number[]>({
  init: () => [],
  add: (a, r) => {
    a.push(r.v);
    return a;
  },
  merge: (a, b) => a.concat(b),
  result: (a) => [...a].sort((x, y) => x - y),
});

function run(spec: WindowSpec, emit: EmitMode, recs: readonly Rec[], retractions = true) {
  const job = defineJob<{ v: number }>()
    .window(spec)
    .aggregate({ n: count(), total: sum((r: { v: number }) => r.v), values })
    .emit(emit, { retractions });
  const driver = createTestDriver(job);
  const steps: WindowResult<Out>[][] = [];
  for (const r of recs) {
    driver.pipe({ v: r.v }, { key: r.key, timestamp: r.ts });
    steps.push(driver.readResults() as WindowResult<Out>[]);
  }
  driver.advanceStreamTime(1e9);
  const tail = driver.readResults() as WindowResult<Out>[];
  return { steps, tail, late: driver.late, driver };
}

const recsArb = fc.array(
  fc.record({
    key: fc.constantFrom<string>("a", "b", "c"),
    ts: fc.integer({ min: 0, max: 300 }),
    v: fc.integer({ min: 0, max: 50 }),
  }),
  { maxLength: 60 },
);
// Mostly ordered streams with some disorder: sort, then swap a few neighbours.
const disorderedArb = fc
  .tuple(recsArb, fc.array(fc.nat(), { maxLength: 20 }))
  .map(([rs, swaps]) => {
    const out = [...rs].sort((a, b) => a.ts - b.ts);
    for (const s of swaps) {
      if (out.length < 2) break;
      const i = s % (out.length - 1);
      const t = out[i] as Rec;
      out[i] = out[i + 1] as Rec;
      out[i + 1] = t;
    }
    return out;
  });
const anyOrderArb = fc.oneof(recsArb, disorderedArb);

const specArb: fc.Arbitrary<WindowSpec> = fc.oneof(
  fc
    .record({ size: fc.integer({ min: 1, max: 60 }), grace: fc.integer({ min: 0, max: 40 }) })
    .map((o) => tumbling(o)),
  fc
    .record({
      size: fc.integer({ min: 1, max: 60 }),
      div: fc.integer({ min: 1, max: 6 }),
      grace: fc.integer({ min: 0, max: 40 }),
    })
    .map((o) =>
      hopping({ size: o.size, advance: Math.max(1, Math.floor(o.size / o.div)), grace: o.grace }),
    ),
  fc
    .record({ size: fc.integer({ min: 1, max: 60 }), grace: fc.integer({ min: 0, max: 40 }) })
    .map((o) => sliding(o)),
  fc
    .record({ gap: fc.integer({ min: 1, max: 40 }), grace: fc.integer({ min: 0, max: 40 }) })
    .map((o) => session(o)),
);
const emitArb: fc.Arbitrary<EmitMode> = fc.oneof(
  fc.constant<EmitMode>("final"),
  fc.constant<EmitMode>("update"),
  fc.integer({ min: 1, max: 50 }).map((everyMs): EmitMode => ({ everyMs })),
);

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const wkey = (r: { key: string; windowStart: number; windowEnd: number }) =>
  `${r.key}|${r.windowStart}|${r.windowEnd}`;

describe("windowing against a brute-force oracle", () => {
  it("final results equal the oracle for every window type, emit mode and grace", () => {
    fc.assert(
      fc.property(specArb, emitArb, anyOrderArb, (spec, emit, recs) => {
        const { steps, tail } = run(spec, emit, recs);
        const all = [...steps.flat(), ...tail];
        const finals = all.filter((r) => r.final);
        const expected = finalWindows(spec, recs);
        const got = new Map(finals.map((r) => [wkey(r), r]));
        // exactly one final per window
        expect(got.size).toBe(finals.length);
        expect(finals.length).toBe(expected.length);
        for (const w of expected) {
          const r = got.get(`${w.key}|${w.start}|${w.end}`);
          expect(r, `missing final ${w.key} [${w.start},${w.end})`).toBeDefined();
          expect(r?.value.values).toEqual(sorted(w.values));
          expect(r?.value.n).toBe(w.values.length);
          expect(r?.value.total).toBe(w.values.reduce((a, b) => a + b, 0));
        }
      }),
      { numRuns: 400 },
    );
  });

  it("windows close exactly when stream time reaches end + grace (sessions: last + gap + grace + 1)", () => {
    fc.assert(
      fc.property(specArb, anyOrderArb, (spec, recs) => {
        const { steps, driver } = run(spec, "final", recs);
        // run() advanced to the end; recompute stream time from the records
        const st = recs.reduce((a, r) => Math.max(a, r.ts), Number.NEGATIVE_INFINITY);
        const closedEarly = new Set(steps.flat().map(wkey));
        for (const w of finalWindows(spec, recs)) {
          const id = `${w.key}|${w.start}|${w.end}`;
          expect(
            closedEarly.has(id),
            `${id} closes at ${closeTime(spec, w)}, stream time ${st}`,
          ).toBe(closeTime(spec, w) <= st);
        }
        void driver;
      }),
      { numRuns: 300 },
    );
  });

  it("every early/update result equals the aggregate of the records seen so far", () => {
    fc.assert(
      fc.property(specArb, emitArb, anyOrderArb, (spec, emit, recs) => {
        const { steps } = run(spec, emit, recs);
        steps.forEach((results, i) => {
          for (const r of results) {
            if (r.final || r.retracted) continue;
            // update mode reflects record i; everyMs fires before record i is applied
            const n = emit === "update" ? i + 1 : i;
            const expected = prefixValues(spec, recs, n, r.key, r.windowStart, r.windowEnd);
            expect(r.value.values).toEqual(sorted(expected));
          }
        });
        if (emit === "final") expect(steps.flat().every((r) => r.final)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("identities are deterministic: emitSeq counts 0,1,2… per window, the last is final, ids unique", () => {
    fc.assert(
      fc.property(specArb, emitArb, anyOrderArb, (spec, emit, recs) => {
        const a = run(spec, emit, recs);
        const b = run(spec, emit, recs);
        const all = [...a.steps.flat(), ...a.tail];
        expect([...b.steps.flat(), ...b.tail]).toEqual(all);
        const ids = all.map((r) => r.id);
        expect(new Set(ids).size).toBe(ids.length);
        const seqs = new Map<string, WindowResult<Out>[]>();
        for (const r of all) seqs.set(wkey(r), [...(seqs.get(wkey(r)) ?? []), r]);
        for (const rs of seqs.values()) {
          rs.forEach((r, i) => {
            expect(r.emitSeq).toBe(i);
            expect(r.id).toBe(`${r.windowStart}:${r.windowEnd}:${i}:${r.key}`);
          });
          // a window whose identity is superseded by a session merge has no final
          if (rs.some((r) => r.final)) expect(rs[rs.length - 1]?.final).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("late records are reported, never silently dropped", () => {
    fc.assert(
      fc.property(specArb, anyOrderArb, (spec, recs) => {
        const { late, tail, steps } = run(spec, "final", recs);
        const finals = [...steps.flat(), ...tail];
        const counted = finals.reduce((a, r) => a + r.value.n, 0);
        // Every record is either in some final window or in the late output.
        const lateTs = late.map((l) => `${l.key}|${l.timestamp}`);
        for (const r of recs) {
          const inWindow = finals.some(
            (w) =>
              w.key === r.key &&
              w.windowStart <= r.ts &&
              r.ts < w.windowEnd &&
              w.value.values.includes(r.v),
          );
          expect(inWindow || lateTs.includes(`${r.key}|${r.ts}`)).toBe(true);
        }
        if (spec.type === "tumbling") expect(counted + late.length).toBe(recs.length);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * A downstream table fed by a job's results, as a ClickHouse
 * ReplacingMergeTree or an upserting sink keeps it: one row per window
 * (key, start, end), the result with the highest `emitSeq` wins, and a
 * retraction deletes the row. Results may come in any order or twice.
 */
function applyResults(results: readonly WindowResult<Out>[]): Map<string, WindowResult<Out>> {
  const rows = new Map<string, WindowResult<Out>>();
  for (const r of results) {
    const prev = rows.get(wkey(r));
    if (!prev || prev.emitSeq < r.emitSeq) rows.set(wkey(r), r);
  }
  for (const [k, r] of rows) if (isRetraction(r)) rows.delete(k);
  return rows;
}

function expectLive(live: Map<string, WindowResult<Out>>, expected: OracleWindow[]): void {
  const want = new Map(expected.map((w) => [`${w.key}|${w.start}|${w.end}`, w]));
  expect([...live.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) expect(live.get(k)?.value.values).toEqual(sorted(w.values));
}

const sessionArb = fc
  .record({ gap: fc.integer({ min: 1, max: 40 }), grace: fc.integer({ min: 0, max: 40 }) })
  .map((o) => session(o));

describe("retractions of superseded sessions", () => {
  it("emit update: after every record, the live rows downstream are exactly the oracle's sessions so far", () => {
    fc.assert(
      fc.property(sessionArb, anyOrderArb, (spec, recs) => {
        const { steps } = run(spec, "update", recs);
        const seen: WindowResult<Out>[] = [];
        steps.forEach((results, i) => {
          seen.push(...results);
          expectLive(applyResults(seen), finalWindows(spec, recs.slice(0, i + 1)));
        });
      }),
      { numRuns: 400 },
    );
  });

  it("every window type and emit mode: at the end the live rows downstream equal the oracle, applied in any order", () => {
    fc.assert(
      fc.property(specArb, emitArb, anyOrderArb, fc.integer(), (spec, emit, recs, seed) => {
        const { steps, tail } = run(spec, emit, recs);
        const all = [...steps.flat(), ...tail];
        const expected = finalWindows(spec, recs);
        expectLive(applyResults(all), expected);
        // a replay (duplicates) in another order changes nothing
        const shuffled = [...all, ...all].sort(
          (a, b) => ((hash(a.id) ^ seed) >>> 0) - ((hash(b.id) ^ seed) >>> 0),
        );
        expectLive(applyResults(shuffled), expected);
      }),
      { numRuns: 400 },
    );
  });

  it("a retraction withdraws an emitted session once, just before its successor's result, and is its window's last result", () => {
    fc.assert(
      fc.property(sessionArb, emitArb, anyOrderArb, (spec, emit, recs) => {
        const { steps, tail } = run(spec, emit, recs);
        const all = [...steps.flat(), ...tail];
        const retractions = all.filter((r) => isRetraction(r));
        if (emit === "final") expect(retractions).toEqual([]);
        const last = new Map<string, WindowResult<Out>>();
        for (const r of all) last.set(wkey(r), r);
        const retracted = new Set<string>();
        all.forEach((r, i) => {
          if (!isRetraction(r)) return;
          expect(r.value).toBeNull();
          expect(r.final).toBe(false);
          expect(r.emitSeq).toBeGreaterThan(0);
          expect(last.get(wkey(r))).toBe(r);
          expect(retracted.has(wkey(r))).toBe(false);
          retracted.add(wkey(r));
          // the next non-retraction result is the session that replaced it
          const next = all.slice(i + 1).find((x) => !isRetraction(x));
          expect(next?.key).toBe(r.key);
          expect(next && next.windowStart <= r.windowStart && r.windowEnd <= next.windowEnd).toBe(
            true,
          );
        });
      }),
      { numRuns: 300 },
    );
  });

  it("retractions: false restores the previous output: the same results without the retractions", () => {
    fc.assert(
      fc.property(sessionArb, emitArb, anyOrderArb, (spec, emit, recs) => {
        const on = run(spec, emit, recs);
        const off = run(spec, emit, recs, false);
        const withOut = [...off.steps.flat(), ...off.tail];
        expect(withOut.some((r) => r.retracted)).toBe(false);
        expect(withOut).toEqual([...on.steps.flat(), ...on.tail].filter((r) => !r.retracted));
      }),
      { numRuns: 200 },
    );
  });
});

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
