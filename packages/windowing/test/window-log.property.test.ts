// The window log (one changelog entry per partition per commit, see
// src/internal/window-log.ts) against an uninterrupted run: commits and
// crashes at random points, where a crash loses everything after the last
// commit (state, results, position) and restarts from the folded changelog
// like the Kafka runtime does. Also: the changelog holds nothing it does not
// need, and state written in the earlier per-window format still restores.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  aggregator,
  combine,
  count,
  type EmitMode,
  hopping,
  session,
  sliding,
  sum,
  tumbling,
  type WindowSpec,
} from "../src/index.js";
import { ChangelogFold, encodeMutations } from "../src/internal/changelog-codec.js";
import {
  PartitionProcessor,
  type ProcessorOutput,
  type StoredWindow,
} from "../src/internal/processor.js";
import type { WindowLogEntry } from "../src/internal/window-log.js";
import { resolveEmit } from "../src/window-result.js";

type R = { key: string; ts: number; v: number };

const values = aggregator<R, number[], number[]>({
  init: () => [],
  add: (a, r) => [...a, r.v],
  merge: (a, b) => a.concat(b),
  result: (a) => [...a].sort((x, y) => x - y),
});

type Cfg = ReturnType<typeof cfgOf>;

const cfgOf = (window: WindowSpec, emit: EmitMode) => ({
  window,
  aggregator: combine({ n: count<R>(), s: sum((r: R) => r.v), values }),
  emit: resolveEmit(emit),
});

const specs: Record<string, fc.Arbitrary<WindowSpec>> = {
  tumbling: fc
    .record({ size: fc.integer({ min: 1, max: 40 }), grace: fc.integer({ min: 0, max: 20 }) })
    .map((o) => tumbling(o)),
  hopping: fc
    .record({
      size: fc.integer({ min: 2, max: 40 }),
      div: fc.integer({ min: 1, max: 4 }),
      grace: fc.integer({ min: 0, max: 20 }),
    })
    .map((o) => hopping({ size: o.size, advance: Math.ceil(o.size / o.div), grace: o.grace })),
  sliding: fc
    .record({ size: fc.integer({ min: 1, max: 40 }), grace: fc.integer({ min: 0, max: 20 }) })
    .map((o) => sliding(o)),
  // small gaps and a wide grace: out-of-order records bridge sessions often
  session: fc
    .record({ gap: fc.integer({ min: 1, max: 12 }), grace: fc.integer({ min: 0, max: 60 }) })
    .map((o) => session(o)),
};

const emitArb = fc.constantFrom<EmitMode>("final", "update", { everyMs: 9 });

const anyOrderArb = fc.array(
  fc.record({
    key: fc.constantFrom<string>("a", "b", "c"),
    ts: fc.integer({ min: 0, max: 250 }),
    v: fc.integer({ min: 0, max: 9 }),
  }),
  { maxLength: 70 },
);
// Mostly in event-time order with some records moved back: few are late,
// and a record arriving after its neighbours bridges their sessions.
const recsArb = fc.oneof(
  anyOrderArb,
  fc.tuple(anyOrderArb, fc.array(fc.nat(), { maxLength: 25 })).map(([rs, moves]) => {
    const out = [...rs].sort((a, b) => a.ts - b.ts);
    for (const m of moves) {
      if (out.length < 3) break;
      const i = m % (out.length - 2);
      out.splice(i + 2, 0, out.splice(i, 1)[0] as R);
    }
    return out;
  }),
);

/** What happens after each record: nothing, a commit, or a crash (then a restart). */
const actionsArb = fc.array(fc.constantFrom("none", "none", "commit", "commit", "crash"), {
  minLength: 80,
  maxLength: 80,
});

const ids = (out: ProcessorOutput<R>) =>
  out.results.map((r) => `${r.id} ${r.final} ${JSON.stringify(r.value)}`);

function uninterrupted(cfg: Cfg, recs: readonly R[]) {
  const out: ProcessorOutput<R> = { results: [], late: [] };
  const p = new PartitionProcessor<R>(cfg, 0);
  for (const r of recs) p.process(r.key, r, r.ts, out);
  p.advanceTo(1e6, out);
  return out;
}

function restored(cfg: Cfg, fold: ChangelogFold) {
  const st = fold.result();
  const p = new PartitionProcessor<R>(cfg, 0);
  p.restore(st.windows, st.buffers, st.meta, st.log);
  return { p, offset: Number(st.sourceOffset ?? 0) };
}

/**
 * Right after a commit: a restore rebuilds exactly the live state, and every
 * live log entry holds the latest value of an open window or a delete marker
 * that an older live entry needs.
 */
function checkCommitted(fold: ChangelogFold, p: PartitionProcessor<R>, cfg: Cfg) {
  expect(restored(cfg, fold).p.inspect()).toEqual(p.inspect());
  const live = fold.result().log;
  const open = new Set(p.inspect().map((w) => `${w.windowStart}\u0000${w.key}`));
  const latest = new Map<string, number>();
  for (const e of live) {
    for (const [k, s] of e.x ?? []) latest.delete(`${s}\u0000${k}`);
    for (const w of e.w) latest.set(`${w.s}\u0000${w.k}`, e.seq);
  }
  for (const e of live) {
    const holds = e.w.some((w) => {
      const id = `${w.s}\u0000${w.k}`;
      return open.has(id) && latest.get(id) === e.seq;
    });
    const needed = (e.x ?? []).some(([k, s]) =>
      live.some((o) => o.seq < e.seq && o.w.some((w) => w.k === k && w.s === s)),
    );
    expect(holds || needed, `entry ${e.seq} is live but needed by nothing`).toBe(true);
  }
}

/**
 * Runs `recs` with commits and crashes after the records `actions` says.
 * Returns the committed results (those of a crashed stretch are discarded,
 * as aborted transactions are) and the fold.
 */
function crashy(cfg: Cfg, recs: readonly R[], actions: readonly string[], check = true) {
  const fold = new ChangelogFold();
  const committed: ProcessorOutput<R> = { results: [], late: [] };
  let pending: ProcessorOutput<R> = { results: [], late: [] };
  let p = new PartitionProcessor<R>(cfg, 0);
  const commit = (offset: number) => {
    for (const m of encodeMutations(p.drainMutations(), String(offset))) fold.apply(m.key, m.value);
    committed.results.push(...pending.results);
    committed.late.push(...pending.late);
    pending = { results: [], late: [] };
    if (check) checkCommitted(fold, p, cfg);
  };
  let crashes = 0;
  let step = 0;
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i] as R;
    p.process(r.key, r, r.ts, pending);
    const action = actions[step++ % actions.length];
    if (action === "commit") commit(i + 1);
    else if (action === "crash" && crashes < 4) {
      crashes++;
      const back = restored(cfg, fold);
      p = back.p;
      pending = { results: [], late: [] };
      i = back.offset - 1;
    }
  }
  p.advanceTo(1e6, pending);
  commit(recs.length);
  return { committed, fold, p };
}

describe("window log: commits and crashes at random points", () => {
  for (const [name, specArb] of Object.entries(specs)) {
    it(`${name}: the committed output equals an uninterrupted run's, and no changelog entry outlives its use`, () => {
      fc.assert(
        fc.property(specArb, emitArb, recsArb, actionsArb, (spec, emit, recs, actions) => {
          const cfg = cfgOf(spec, emit);
          const expected = uninterrupted(cfg, recs);
          const { committed, fold } = crashy(cfg, recs, actions);
          expect(ids(committed)).toEqual(ids(expected));
          expect(committed.late.length).toBe(expected.late.length);
          // everything closed: no window entry is left in the changelog
          expect(fold.result().log).toEqual([]);
        }),
        // sessions: enough runs to meet a merge whose marker must outlive a later entry
        { numRuns: name === "session" ? 2500 : 200 },
      );
    }, 120_000);
  }

  it("session merges under emit update: merged-away sessions stay deleted across restores", () => {
    // a@10, then a@30 and b@31 in one entry; a@20 bridges a's sessions (a@30
    // is merged away: a delete marker, since its entry stays live for b);
    // a@25 then moves a's latest value on, and the marker's entry must stay
    // while a@30's older entry is live, or a restore revives a@30.
    const cfg = cfgOf(session({ gap: 10, grace: 100 }), "update");
    const recs: R[] = [
      { key: "a", ts: 10, v: 1 },
      { key: "a", ts: 30, v: 2 },
      { key: "b", ts: 31, v: 3 },
      { key: "a", ts: 20, v: 4 },
      { key: "a", ts: 25, v: 5 },
      { key: "c", ts: 40, v: 6 },
    ];
    const actions = ["commit", "none", "commit", "commit", "commit", "crash", "none"];
    const { committed, fold } = crashy(cfg, recs, actions);
    expect(ids(committed)).toEqual(ids(uninterrupted(cfg, recs)));
    expect(fold.result().log).toEqual([]);
  });
});

describe("window log: state in the earlier per-window format", () => {
  it("restores, continues like an uninterrupted run and is rewritten as log entries at the first commit", () => {
    fc.assert(
      fc.property(
        fc.oneof(...Object.values(specs)),
        emitArb,
        recsArb,
        fc.nat(),
        actionsArb,
        (spec, emit, recs, cutAt, actions) => {
          const cfg = cfgOf(spec, emit);
          const cut = recs.length === 0 ? 0 : cutAt % (recs.length + 1);
          const a = new PartitionProcessor<R>(cfg, 0);
          const before: ProcessorOutput<R> = { results: [], late: [] };
          for (const r of recs.slice(0, cut)) a.process(r.key, r, r.ts, before);
          // the earlier format: one compacted record per open window and buffer, meta, offset
          const fold = new ChangelogFold();
          for (const m of a.snapshot()) {
            if (m.kind === "log") {
              const entry = JSON.parse(m.value as string) as { w: StoredWindow[] };
              for (const stored of entry.w) {
                // that format wrote every field: end, close time and dirty flag too
                const w = withAllFields(stored, cfg.window);
                const [rec] = encodeMutations(
                  [{ kind: "window", key: w.k, start: w.s, end: w.e as number, value: w }],
                  undefined,
                );
                if (rec) fold.apply(rec.key, rec.value);
              }
            } else {
              for (const rec of encodeMutations([m], undefined)) fold.apply(rec.key, rec.value);
            }
          }
          for (const rec of encodeMutations([], String(cut))) fold.apply(rec.key, rec.value);
          const st = fold.result();
          expect(st.log).toEqual([]);
          const b = new PartitionProcessor<R>(cfg, 0);
          b.restore(st.windows, st.buffers, st.meta, st.log as WindowLogEntry[]);
          const after: ProcessorOutput<R> = { results: [], late: [] };
          let first = true;
          const rest = recs.slice(cut);
          rest.forEach((r, i) => {
            b.process(r.key, r, r.ts, after);
            if (actions[i] !== "none") {
              for (const m of encodeMutations(b.drainMutations(), String(cut + i + 1)))
                fold.apply(m.key, m.value);
              if (first) {
                first = false;
                const legacy = [...fold.entries()].filter(
                  ([k, v]) => k.startsWith('["w"') && v !== null,
                );
                expect(legacy).toEqual([]);
              }
              // a restore from here reads only the log
              const again = fold.result();
              const c = new PartitionProcessor<R>(cfg, 0);
              c.restore(again.windows, again.buffers, again.meta, again.log);
              expect(c.inspect()).toEqual(b.inspect());
            }
          });
          b.advanceTo(1e6, after);
          expect(ids({ results: [...before.results, ...after.results], late: [] })).toEqual(
            ids(uninterrupted(cfg, recs)),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** A stored window with the fields a window of the spec may leave out written out. */
function withAllFields(w: StoredWindow, spec: WindowSpec): StoredWindow {
  const e = w.e ?? w.s + (spec.type === "session" ? Number.NaN : spec.sizeMs);
  const c = w.c ?? e + spec.graceMs + (spec.type === "session" ? spec.gapMs : 0);
  return { ...w, e, c, d: w.d ?? false };
}
