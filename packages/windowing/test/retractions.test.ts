// Retractions of superseded sessions: shape and identity, the opt-out, and
// pending retractions (emit everyMs) surviving a changelog restore exactly once.
import { describe, expect, it } from "vitest";
import {
  count,
  createTestDriver,
  defineJob,
  isRetraction,
  session,
  sum,
  tumbling,
  WindowingError,
} from "../src/index.js";
import { ChangelogFold, encodeMutations } from "../src/internal/changelog-codec.js";
import { PartitionProcessor, type ProcessorOutput } from "../src/internal/processor.js";
import { resolveEmit } from "../src/window-result.js";

type Ev = { v: number };

describe("session retractions", () => {
  it("emit update: a merged-away session is retracted just before the merged session's result", () => {
    const job = defineJob<Ev>()
      .window(session({ gap: 10, grace: 100 }))
      .aggregate(sum((e: Ev) => e.v))
      .emit("update");
    const driver = createTestDriver(job);
    driver.pipe({ v: 1 }, { key: "u", timestamp: 0 });
    driver.pipe({ v: 2 }, { key: "u", timestamp: 20 });
    expect(driver.readResults().map((r) => r.id)).toEqual(["0:1:0:u", "20:21:0:u"]);
    driver.pipe({ v: 4 }, { key: "u", timestamp: 10 }); // bridges both
    expect(driver.readResults()).toEqual([
      {
        key: "u",
        windowStart: 0,
        windowEnd: 1,
        value: null,
        final: false,
        emitSeq: 1,
        partition: 0,
        id: "0:1:1:u",
        retracted: true,
      },
      {
        key: "u",
        windowStart: 20,
        windowEnd: 21,
        value: null,
        final: false,
        emitSeq: 1,
        partition: 0,
        id: "20:21:1:u",
        retracted: true,
      },
      {
        key: "u",
        windowStart: 0,
        windowEnd: 21,
        value: 7,
        final: false,
        emitSeq: 0,
        partition: 0,
        id: "0:21:0:u",
      },
    ]);
    driver.advanceStreamTime(200);
    const [last] = driver.readResults();
    expect(last).toMatchObject({ id: "0:21:1:u", final: true, value: 7 });
    expect(last && isRetraction(last)).toBe(false);
  });

  it("emit final and other window types never retract", () => {
    for (const [spec, emit] of [
      [session({ gap: 10, grace: 100 }), "final"],
      [tumbling({ size: 10 }), "update"],
    ] as const) {
      const driver = createTestDriver(defineJob<Ev>().window(spec).aggregate(count()).emit(emit));
      for (const t of [0, 20, 10, 5, 25]) driver.pipe({ v: 1 }, { key: "u", timestamp: t });
      driver.advanceStreamTime(1000);
      expect(driver.results.filter((r) => r.retracted)).toEqual([]);
    }
  });

  it("retractions: false emits none", () => {
    const driver = createTestDriver(
      defineJob<Ev>()
        .window(session({ gap: 10, grace: 100 }))
        .aggregate(count())
        .emit("update", { retractions: false }),
    );
    for (const t of [0, 20, 10]) driver.pipe({ v: 1 }, { key: "u", timestamp: t });
    expect(driver.results.map((r) => r.id)).toEqual(["0:1:0:u", "20:21:0:u", "0:21:0:u"]);
  });

  it("rejects a retractions option that is not a boolean", () => {
    const job = defineJob<Ev>()
      .window(session({ gap: 10 }))
      .aggregate(count());
    expect(() => job.emit("update", { retractions: "yes" as unknown as boolean })).toThrowError(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
    expect(WindowingError.isInstance(new WindowingError("WINDOWING_INVALID_OPTIONS", "x"))).toBe(
      true,
    );
  });

  it("emit everyMs: a pending retraction is kept in state and emitted once after a restore", () => {
    const cfg = {
      window: session({ gap: 10, grace: 0 }),
      aggregator: count<Ev>(),
      emit: resolveEmit({ everyMs: 100 }),
    };
    const run = (cut: boolean) => {
      const out: ProcessorOutput<Ev> = { results: [], late: [] };
      const fold = new ChangelogFold();
      let p = new PartitionProcessor<Ev>(cfg, 0);
      const restore = () => {
        for (const m of encodeMutations(p.drainMutations(), undefined)) fold.apply(m.key, m.value);
        if (!cut) return;
        const st = fold.result();
        p = new PartitionProcessor<Ev>(cfg, 0);
        // every part of the folded state (the window changelog's layout may change)
        const restoreAll = p.restore.bind(p) as (...parts: unknown[]) => void;
        restoreAll(st.windows, st.buffers, st.meta, (st as { log?: unknown }).log);
      };
      p.process("u", { v: 1 }, 95, out);
      p.process("u", { v: 1 }, 100, out); // tick first: [95,96) emitted; then [95,101) replaces it
      restore();
      p.process("u", { v: 1 }, 150, out);
      p.process("u", { v: 1 }, 141, out); // [141,151): nothing emitted, nothing to retract
      restore(); // the pending retraction of [95,96) is in the changelog only
      p.process("u", { v: 1 }, 155, out);
      restore();
      p.process("x", { v: 1 }, 200, out); // tick: retraction + merged result
      restore(); // after emission the retraction is gone from state
      p.advanceTo(1000, out);
      return out.results.map((r) => `${r.id}${r.retracted ? " retracted" : ""}`);
    };
    const uninterrupted = run(false);
    expect(uninterrupted.filter((r) => r.endsWith("retracted"))).toEqual(["95:96:1:u retracted"]);
    expect(run(true)).toEqual(uninterrupted);
  });
});
