// Checkpoint + restore is invisible: draining state mutations at arbitrary
// points, folding them like a compacted changelog and restoring a fresh
// processor from the fold gives exactly the output of an uninterrupted run.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  combine,
  count,
  countDistinct,
  hopping,
  quantiles,
  session,
  sliding,
  sum,
  tumbling,
  type WindowSpec,
} from "../src/index.js";
import { ChangelogFold, encodeMutations } from "../src/internal/changelog-codec.js";
import { PartitionProcessor, type ProcessorOutput } from "../src/internal/processor.js";
import { resolveEmit } from "../src/window-result.js";

type R = { key: string; ts: number; v: number };

const specArb: fc.Arbitrary<WindowSpec> = fc.oneof(
  fc.integer({ min: 1, max: 40 }).map((size) => tumbling({ size, grace: 5 })),
  fc
    .integer({ min: 2, max: 40 })
    .map((size) => hopping({ size, advance: Math.ceil(size / 2), grace: 3 })),
  fc.integer({ min: 1, max: 40 }).map((size) => sliding({ size, grace: 4 })),
  fc.integer({ min: 1, max: 20 }).map((gap) => session({ gap, grace: 6 })),
);

describe("changelog restore", () => {
  it("a run restored from drained mutations at random points emits exactly what an uninterrupted run emits", () => {
    fc.assert(
      fc.property(
        specArb,
        fc.constantFrom("final" as const, "update" as const, { everyMs: 7 }),
        fc.array(
          fc.record({
            key: fc.constantFrom("a", "b"),
            ts: fc.integer({ min: 0, max: 200 }),
            v: fc.integer({ min: 0, max: 9 }),
          }),
          {
            maxLength: 50,
          },
        ),
        fc.array(fc.boolean(), { minLength: 50, maxLength: 50 }),
        (spec, emit, recs, cuts) => {
          const cfg = {
            window: spec,
            aggregator: combine({
              n: count<R>(),
              s: sum((r: R) => r.v),
              d: countDistinct((r: R) => r.v),
              q: quantiles((r: R) => r.v + 1, { quantiles: [0.5] }),
            }),
            emit: resolveEmit(emit),
          };
          const outA: ProcessorOutput<R> = { results: [], late: [] };
          const a = new PartitionProcessor<R>(cfg, 0);
          for (const r of recs) a.process(r.key, r, r.ts, outA);
          a.advanceTo(1e6, outA);

          const outB: ProcessorOutput<R> = { results: [], late: [] };
          const fold = new ChangelogFold();
          let b = new PartitionProcessor<R>(cfg, 0);
          recs.forEach((r, i) => {
            b.process(r.key, r, r.ts, outB);
            if (cuts[i]) {
              for (const m of encodeMutations(b.drainMutations(), String(i + 1)))
                fold.apply(m.key, m.value);
              const st = fold.result();
              expect(st.sourceOffset).toBe(String(i + 1));
              b = new PartitionProcessor<R>(cfg, 0);
              b.restore(st.windows, st.buffers, st.meta, st.log);
            }
          });
          b.advanceTo(1e6, outB);
          expect(outB.results).toEqual(outA.results);
          expect(outB.late.length).toBe(outA.late.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
