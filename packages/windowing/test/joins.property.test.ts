// Stream joins and patterns against brute-force oracles over randomized,
// out-of-order inputs with late records; and restore from drained state
// mutations at random points, which must not change any output.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createTestDriver, defineJob, pattern } from "../src/index.js";
import { ChangelogFold, encodeMutations } from "../src/internal/changelog-codec.js";
import { murmur3 } from "../src/internal/hyperloglog.js";
import type { StateOperator } from "../src/internal/operator.js";
import type { ProcessorOutput } from "../src/internal/processor.js";
import {
  type Ev,
  type OracleStep,
  patternOracle,
  type SideRec,
  streamJoinOracle,
} from "./join-oracle.js";

const sideRecs = fc.array(
  fc.record({
    side: fc.constantFrom(0 as const, 1 as const),
    key: fc.constantFrom("a", "b", "c"),
    t: fc.integer({ min: 0, max: 120 }),
    v: fc.integer({ min: 0, max: 99 }),
  }),
  { maxLength: 60 },
);

const is = (type: string) => (e: Ev) => e.type === type;

const patterns: {
  name: string;
  steps: OracleStep[];
  absent?: { name: string; where: (e: Ev) => boolean };
}[] = [
  {
    name: "view → cart → purchase",
    steps: [
      { name: "view", where: is("view") },
      { name: "cart", where: is("cart") },
      { name: "purchase", where: is("buy") },
    ],
  },
  {
    name: "view → cart → no purchase",
    steps: [
      { name: "view", where: is("view") },
      { name: "cart", where: is("cart") },
    ],
    absent: { name: "purchase", where: is("buy") },
  },
  {
    name: "view → search? → cart",
    steps: [
      { name: "view", where: is("view") },
      { name: "search", where: is("search"), optional: true },
      { name: "cart", where: is("cart") },
    ],
  },
  { name: "single step", steps: [{ name: "buy", where: is("buy") }] },
  {
    name: "view → no cart",
    steps: [{ name: "view", where: is("view") }],
    absent: { name: "cart", where: is("cart") },
  },
];

const events = fc.array(
  fc.record({
    key: fc.constantFrom("a", "b"),
    t: fc.integer({ min: 0, max: 150 }),
    type: fc.constantFrom("view", "cart", "buy", "search", "other"),
  }),
  { maxLength: 60 },
);

function buildPattern(p: (typeof patterns)[number], within: number, grace: number) {
  let b = pattern<Ev>({ within, grace });
  for (const s of p.steps) b = b.step(s.name, s.where, { optional: s.optional === true });
  if (p.absent) b = b.notFollowedBy(p.absent.name, p.absent.where);
  return b;
}

/** Pattern results (id, bounds, value) and the late count equal the oracle's. */
function expectPatternOracle(
  out: {
    results: readonly { id: string; windowStart: number; windowEnd: number; value: unknown }[];
    late: readonly unknown[];
  },
  evs: Ev[],
  cfg: Parameters<typeof patternOracle>[1],
): void {
  const got = out.results
    .map((r) => `${r.id}@${r.windowStart}-${r.windowEnd}=${JSON.stringify(r.value)}`)
    .sort();
  const want = patternOracle(evs, cfg);
  expect(got).toEqual(want.results);
  expect(out.late.length).toBe(want.late);
}

describe("stream–stream join", () => {
  it("inner/left/outer equal the oracle for any arrival order, on 1 or 3 partitions", () => {
    fc.assert(
      fc.property(
        sideRecs,
        fc.constantFrom("inner" as const, "left" as const, "outer" as const),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 40 }),
        fc.constantFrom(1, 3),
        (recs, type, within, grace, partitions) => {
          const driver = createTestDriver(
            defineJob<number>().join<number>(
              { topic: "right", schema: undefined as never },
              {
                within,
                grace,
                type,
              },
            ),
            { partitions },
          );
          for (const r of recs) {
            driver.pipe(r.v, {
              key: r.key,
              timestamp: r.t,
              ...(r.side === 1 ? { source: "right" } : {}),
            });
          }
          const got = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
          // stream time is per partition: the oracle runs once per partition
          const want = { results: [] as string[], late: 0 };
          for (let p = 0; p < partitions; p++) {
            const mine = recs.filter((r) => murmur3(r.key) % partitions === p);
            const w = streamJoinOracle(mine, { type, within, grace });
            want.results.push(...w.results);
            want.late += w.late;
          }
          expect(got).toEqual(want.results.sort());
          expect(driver.late.length).toBe(want.late);
          expect(new Set(got).size).toBe(got.length);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("pattern detection", () => {
  it("every pattern shape equals the oracle for out-of-order input with late records", () => {
    fc.assert(
      fc.property(
        events,
        fc.constantFrom(...patterns),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 30 }),
        (evs, p, within, grace) => {
          const driver = createTestDriver(
            defineJob<Ev>({ source: { eventTime: "t" } }).match(buildPattern(p, within, grace)),
          );
          for (const e of evs) driver.pipe(e, { key: e.key, timestamp: e.t });
          expectPatternOracle(driver, evs, { ...p, within, grace });
        },
      ),
      { numRuns: 600 },
    );
  });
});

/** Runs an operator, restoring a fresh one from the folded changelog at each cut. */
function runWithRestores(
  make: () => StateOperator,
  feed: { key: string; value: unknown; t: number }[],
  cuts: boolean[],
): string[] {
  const out: ProcessorOutput<unknown> = { results: [], late: [] };
  const fold = new ChangelogFold();
  let op = make();
  feed.forEach((r, i) => {
    op.process(r.key, r.value, r.t, out);
    if (cuts[i]) {
      for (const c of encodeMutations(op.drainMutations(), String(i)))
        fold.apply(c.key, c.value === null ? null : Buffer.from(c.value));
      const state = fold.result();
      op = make();
      op.restore(state.windows, state.buffers, state.meta);
    }
  });
  return [
    ...out.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`),
    ...out.late.map((l) => `late:${l.key}:${l.timestamp}`),
  ].sort();
}

/**
 * Runs an operator with a commit (drain into the changelog) or a crash after
 * each record as `todo` says. A crash loses the output and state since the
 * last commit, restores a fresh operator from the changelog and reads the
 * records since that commit again (each crash point fires once).
 */
function runWithCrashes(
  make: () => StateOperator,
  feed: { key: string; value: unknown; t: number }[],
  steps: ("run" | "commit" | "crash")[],
): { out: ProcessorOutput<unknown>; fold: ChangelogFold; op: StateOperator } {
  const out: ProcessorOutput<unknown> = { results: [], late: [] };
  const fold = new ChangelogFold();
  const commit = (o: StateOperator) => {
    for (const c of encodeMutations(o.drainMutations(), undefined))
      fold.apply(c.key, c.value === null ? null : Buffer.from(c.value));
  };
  const todo = [...steps];
  let op = make();
  let committed = { next: 0, results: 0, late: 0 };
  for (let i = 0; i < feed.length; i++) {
    const r = feed[i] as (typeof feed)[number];
    op.process(r.key, r.value, r.t, out);
    if (todo[i] === "commit") {
      commit(op);
      committed = { next: i + 1, results: out.results.length, late: out.late.length };
    } else if (todo[i] === "crash") {
      todo[i] = "run";
      out.results.length = committed.results;
      out.late.length = committed.late;
      const state = fold.result();
      op = make();
      op.restore(state.windows, state.buffers, state.meta);
      i = committed.next - 1;
    }
  }
  commit(op);
  return { out, fold, op };
}

/** Every log entry (`c<seq>`) left in the changelog holds a row at or after `horizon`. */
function liveEntriesHoldUnexpired(fold: ChangelogFold, horizon: number): void {
  for (const [k, v] of fold.entries()) {
    if (v === null || !k.startsWith('["b","c')) continue;
    const rows = JSON.parse(v.toString()) as { t: number }[];
    expect(Math.max(...rows.map((x) => x.t))).toBeGreaterThanOrEqual(horizon);
  }
}

describe("restore", () => {
  const cutArb = fc.array(fc.boolean(), { minLength: 60, maxLength: 60 });

  it("a join restored from its changelog at random points emits what an uninterrupted run emits", () => {
    fc.assert(
      fc.property(sideRecs, cutArb, fc.integer({ min: 0, max: 20 }), (recs, cuts, grace) => {
        const job = defineJob<number>().join<number>(
          { topic: "right", schema: undefined as never },
          { within: 10, grace, type: "outer" },
        );
        const make = () => (job.definition.operator as (p: number) => StateOperator)(0);
        const feed = (recs as SideRec[]).map((r) => ({
          key: r.key,
          value: { s: r.side, v: r.v },
          t: r.t,
        }));
        const none = cuts.map(() => false);
        expect(runWithRestores(make, feed, cuts)).toEqual(runWithRestores(make, feed, none));
      }),
      { numRuns: 300 },
    );
  });

  const steps = fc.array(fc.constantFrom("run" as const, "commit" as const, "crash" as const), {
    minLength: 60,
    maxLength: 60,
  });

  it("a join committed and crashed at random points equals the oracle; the changelog keeps only live log entries", () => {
    fc.assert(
      fc.property(
        sideRecs,
        steps,
        fc.constantFrom("inner" as const, "left" as const, "outer" as const),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 20 }),
        (recs, todo, type, within, grace) => {
          const job = defineJob<number>().join<number>(
            { topic: "right", schema: undefined as never },
            { within, grace, type },
          );
          const make = () => (job.definition.operator as (p: number) => StateOperator)(0);
          const feed = (recs as SideRec[]).map((r) => ({
            key: r.key,
            value: { s: r.side, v: r.v },
            t: r.t,
          }));
          const { out, fold, op } = runWithCrashes(make, feed, todo);
          const got = out.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
          const want = streamJoinOracle(recs as SideRec[], { type, within, grace });
          expect(got).toEqual(want.results);
          expect(out.late.length).toBe(want.late);
          // every log entry left in the changelog still holds a record that has not expired
          liveEntriesHoldUnexpired(fold, op.streamTime - within - grace);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("a pattern committed and crashed at random points equals the oracle; the changelog keeps only live log entries", () => {
    fc.assert(
      fc.property(
        events,
        steps,
        fc.constantFrom(...patterns),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 30 }),
        (evs, todo, p, within, grace) => {
          const job = defineJob<Ev>().match(buildPattern(p, within, grace));
          const make = () => (job.definition.operator as (p: number) => StateOperator)(0);
          const feed = evs.map((e) => ({ key: e.key, value: e, t: e.t }));
          const { out, fold, op } = runWithCrashes(make, feed, todo);
          expectPatternOracle(out, evs, { ...p, within, grace });
          // pending events: an entry lives while one of its events is not sealed
          liveEntriesHoldUnexpired(fold, op.streamTime - grace);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("a pattern restored from its changelog at random points emits what an uninterrupted run emits", () => {
    fc.assert(
      fc.property(events, cutArb, fc.constantFrom(...patterns), (evs, cuts, p) => {
        const job = defineJob<Ev>().match(buildPattern(p, 25, 10));
        const make = () => (job.definition.operator as (p: number) => StateOperator)(0);
        const feed = evs.map((e) => ({ key: e.key, value: e, t: e.t }));
        const none = cuts.map(() => false);
        expect(runWithRestores(make, feed, cuts)).toEqual(runWithRestores(make, feed, none));
      }),
      { numRuns: 300 },
    );
  });

  it("an operator restored from its snapshot (undrained changes included) continues like the original", () => {
    fc.assert(
      fc.property(
        sideRecs,
        events,
        fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
        fc.nat({ max: 60 }),
        (recs, evs, drains, cut) => {
          const join = defineJob<number>().join<number>(
            { topic: "right", schema: undefined as never },
            { within: 10, grace: 5, type: "outer" },
          );
          const match = defineJob<Ev>().match(buildPattern(patterns[1] as never, 25, 10));
          const cases = [
            {
              make: () => (join.definition.operator as (p: number) => StateOperator)(0),
              feed: (recs as SideRec[]).map((r) => ({
                key: r.key,
                value: { s: r.side, v: r.v },
                t: r.t,
              })),
            },
            {
              make: () => (match.definition.operator as (p: number) => StateOperator)(0),
              feed: evs.map((e) => ({ key: e.key, value: e, t: e.t })),
            },
          ];
          for (const { make, feed } of cases) {
            const a = make();
            const sink: ProcessorOutput<unknown> = { results: [], late: [] };
            feed.slice(0, cut).forEach((r, i) => {
              a.process(r.key, r.value, r.t, sink);
              if (drains[i]) a.drainMutations();
            });
            const fold = new ChangelogFold();
            for (const c of encodeMutations(a.snapshot(), undefined))
              fold.apply(c.key, c.value === null ? null : Buffer.from(c.value));
            const state = fold.result();
            const b = make();
            b.restore(state.windows, state.buffers, state.meta);
            const outA: ProcessorOutput<unknown> = { results: [], late: [] };
            const outB: ProcessorOutput<unknown> = { results: [], late: [] };
            for (const r of feed.slice(cut)) {
              a.process(r.key, r.value, r.t, outA);
              b.process(r.key, r.value, r.t, outB);
            }
            const ids = (o: ProcessorOutput<unknown>) => o.results.map((r) => r.id).sort();
            expect(ids(outB)).toEqual(ids(outA));
            expect(outB.late.length).toBe(outA.late.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a stream–table join restored at random points emits what an uninterrupted run emits", () => {
    fc.assert(
      fc.property(sideRecs, cutArb, (recs, cuts) => {
        const job = defineJob<number>().joinTable<number>(
          { topic: "table", schema: undefined as never },
          { type: "left" },
        );
        const make = () => (job.definition.operator as (p: number) => StateOperator)(0);
        const feed = (recs as SideRec[]).map((r) => ({
          key: r.key,
          value: { s: r.side, v: r.v % 7 === 0 ? null : r.v },
          t: r.t,
        }));
        const none = cuts.map(() => false);
        expect(runWithRestores(make, feed, cuts)).toEqual(runWithRestores(make, feed, none));
      }),
      { numRuns: 300 },
    );
  });
});
