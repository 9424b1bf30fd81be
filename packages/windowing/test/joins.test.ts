// Joins and patterns through the TestDriver: worked examples with exact
// expected outputs, and option validation.
import { describe, expect, it } from "vitest";
import {
  createJob,
  createTestDriver,
  defineJob,
  pattern,
  tumbling,
  WindowingError,
} from "../src/index.js";
import { ChangelogFold, encodeMutations } from "../src/internal/changelog-codec.js";
import type { StateOperator } from "../src/internal/operator.js";
import type { ProcessorOutput } from "../src/internal/processor.js";

type Click = { user: string; page: string; ts: number };
type Buy = { user: string; amount: number; ts: number };
type Ev = { user: string; type: string; ts: number };
const json = <T>() => ({ decode: (b: Buffer) => JSON.parse(b.toString()) as T });

describe("stream–stream join", () => {
  it("joins within the bound, emits an unmatched left once its bound + grace has passed, and sends late records aside", () => {
    const job = defineJob<Click>({ source: { eventTime: "ts" } }).join<Buy>(
      { topic: "buys", schema: json<Buy>(), eventTime: "ts", keyBy: (b) => b.user },
      { within: "10s", grace: "2s", type: "left" },
    );
    const d = createTestDriver(job);
    d.pipe({ user: "u1", page: "/a", ts: 1_000 }, { key: "u1", timestamp: 0 });
    d.pipe({ user: "u2", page: "/b", ts: 2_000 }, { key: "u2", timestamp: 0 });
    d.pipeRaw(JSON.stringify({ user: "u1", amount: 5, ts: 9_000 }), { source: "buys" });
    expect(d.readResults()).toEqual([
      {
        key: "u1",
        windowStart: 1_000,
        windowEnd: 9_001,
        value: {
          left: { user: "u1", page: "/a", ts: 1_000 },
          right: { user: "u1", amount: 5, ts: 9_000 },
        },
        final: true,
        emitSeq: 0,
        partition: 0,
        id: "1000:0:9000:0:u1",
      },
    ]);
    // stream time is the slower side's: a left record alone does not move it
    d.pipe({ user: "u3", page: "/c", ts: 14_001 }, { key: "u3", timestamp: 0 });
    expect(d.readResults()).toEqual([]);
    // u2's click expires when stream time passes 2000 + 10000 + 2000
    d.pipeRaw(JSON.stringify({ user: "u9", amount: 1, ts: 14_000 }), { source: "buys" });
    expect(d.readResults()).toEqual([]);
    d.pipeRaw(JSON.stringify({ user: "u9", amount: 1, ts: 14_001 }), { source: "buys" });
    expect(d.readResults().map((r) => [r.id, r.value])).toEqual([
      ["2000:0:-:-:u2", { left: { user: "u2", page: "/b", ts: 2_000 }, right: null }],
    ]);
    // late: more than 2 s behind stream time
    d.pipeRaw(JSON.stringify({ user: "u3", amount: 1, ts: 12_000 }), { source: "buys" });
    expect(d.late.map((l) => l.timestamp)).toEqual([12_000]);
    expect(d.readResults()).toEqual([]);
    // undecodable right record: DLQ
    d.pipeRaw("{nope", { source: "buys", key: "u3" });
    expect(d.dlq.map((x) => x.code)).toEqual(["WINDOWING_USER_FUNCTION_FAILED"]);
  });

  it("select shapes the value; an unknown joined source is rejected", () => {
    const d = createTestDriver(
      defineJob<number>().join<number, number>(
        { topic: "r", schema: json<number>() },
        { within: 5, select: (l, r) => (l ?? 0) * 100 + (r ?? 0) },
      ),
    );
    d.pipe(3, { key: "k", timestamp: 10 });
    d.pipe(4, { key: "k", timestamp: 14, source: "r" });
    expect(d.results.map((r) => r.value)).toEqual([304]);
    expect(() => d.pipe(1, { source: "nope" })).toThrow(/not a joined stream/);
  });
});

describe("stream–stream join state", () => {
  it("a commit writes one changelog entry for its buffered records; expiry writes one tombstone per whole entry", () => {
    const job = defineJob<number>().join<number>(
      { topic: "r", schema: json<number>() },
      { within: 10, type: "left" },
    );
    const op = (job.definition.operator as (p: number) => StateOperator)(0);
    const out: ProcessorOutput<unknown> = { results: [], late: [] };
    const written = () =>
      op
        .drainMutations()
        .map((m) =>
          m.kind === "buffer" ? `${m.key}:${m.value === null ? "null" : m.value.length}` : m.kind,
        );
    for (let k = 0; k < 50; k++) op.process(`k${k}`, { s: 0, v: k }, 100, out);
    op.process("k0", { s: 1, v: -1 }, 100, out);
    expect(out.results.map((r) => r.id)).toEqual(["100:0:100:0:k0"]);
    // 51 records of 50 keys: one log entry (plus stream time and per-side times)
    expect(written()).toEqual(["meta", "s:1", "c0:51"]);
    expect(op.openWindows).toBe(51);
    // a record of an earlier entry matched now: one row marks it
    op.process("k1", { s: 1, v: -2 }, 105, out);
    expect(written()).toEqual(["s:1", "c1:2"]);
    // both sides reach 111: every record at 100 expires, the unmatched ones are emitted
    op.process("z", { s: 0, v: 0 }, 111, out);
    op.process("z", { s: 1, v: 0 }, 111, out);
    expect(out.results.filter((r) => r.id.startsWith("100:")).length).toBe(2 + 48);
    expect(written()).toEqual(["meta", "s:1", "c0:null", "c2:2"]);
    expect(op.openWindows).toBe(3);
  });
});

describe("pattern state", () => {
  it("events waiting for their grace are one log entry per commit; restore keeps only the events not sealed yet", () => {
    const job = defineJob<Ev>().match(
      pattern<Ev>({ within: 100, grace: 10 }).step("buy", (e) => e.type === "buy"),
    );
    const make = () => (job.definition.operator as (p: number) => StateOperator)(0);
    const fold = new ChangelogFold();
    const out: ProcessorOutput<unknown> = { results: [], late: [] };
    const commit = (o: StateOperator) => {
      const ms = o.drainMutations();
      for (const c of encodeMutations(ms, undefined)) fold.apply(c.key, c.value);
      return ms.map((m) =>
        m.kind === "buffer" ? `${m.key}:${m.value === null ? "null" : m.value.length}` : m.kind,
      );
    };
    const ev = (user: string, type: string, ts: number) => ({ user, type, ts });
    let op = make();
    op.process("a", ev("a", "buy", 0), 0, out);
    op.process("a", ev("a", "buy", 5), 5, out);
    op.process("b", ev("b", "other", 1), 1, out);
    expect(commit(op)).toEqual(["meta", "c0:3"]);
    // stream time 12: the buy at 0 is sealed and matched, the one at 5 still waits
    op.process("b", ev("b", "other", 12), 12, out);
    expect(out.results.map((r) => r.id)).toEqual(["0:0:a"]);
    expect(commit(op)).toEqual(["meta", "c1:1"]);
    // a crash: the restored operator must not match the sealed buy at 0 again
    const state = fold.result();
    op = make();
    op.restore(state.windows, state.buffers, state.meta);
    expect(op.openWindows).toBe(2); // a's buy at 5 and b's event at 12
    op.process("b", ev("b", "other", 30), 30, out);
    expect(out.results.map((r) => r.id)).toEqual(["0:0:a", "5:0:a"]);
    // both entries' events are sealed now: deleted
    expect(commit(op)).toEqual(["meta", "c0:null", "c1:null", "c2:1"]);
  });
});

describe("stream–table join", () => {
  it("joins the latest row per key; a tombstone deletes it", () => {
    type Profile = { country: string };
    const d = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } }).joinTable<Profile, string>(
        { topic: "profiles", schema: json<Profile>() },
        { type: "left", select: (e, p) => `${e.type}@${p?.country ?? "?"}` },
      ),
    );
    d.pipeRaw(JSON.stringify({ country: "FR" }), { source: "profiles", key: "u1", timestamp: 0 });
    d.pipe({ user: "u1", type: "view", ts: 1 }, { key: "u1" });
    d.pipeRaw(JSON.stringify({ country: "DE" }), { source: "profiles", key: "u1", timestamp: 0 });
    d.pipe({ user: "u1", type: "cart", ts: 2 }, { key: "u1" });
    d.pipeRaw(null, { source: "profiles", key: "u1", timestamp: 0 });
    d.pipe({ user: "u1", type: "buy", ts: 3 }, { key: "u1" });
    expect(d.results.map((r) => [r.id, r.value])).toEqual([
      ["1:2:0:u1", "view@FR"],
      ["2:3:1:u1", "cart@DE"],
      ["3:4:2:u1", "buy@?"],
    ]);
    expect(d.dlq).toEqual([]);
  });
});

describe("patterns", () => {
  const funnel = () =>
    pattern<Ev>({ within: "30m", grace: "1m" })
      .step("view", (e) => e.type === "page_view")
      .step("cart", (e) => e.type === "add_to_cart");
  const M = 60_000;

  it("detects conversion and abandonment, in event-time order, with the events that formed them", () => {
    const converted = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } }).match(
        funnel().step("purchase", (e) => e.type === "purchase"),
      ),
    );
    const abandoned = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } }).match(
        funnel().notFollowedBy("purchase", (e) => e.type === "purchase"),
      ),
    );
    const evs: Ev[] = [
      { user: "a", type: "add_to_cart", ts: 2 * M }, // out of order, within grace
      { user: "a", type: "page_view", ts: 1 * M + 30_000 },
      { user: "b", type: "page_view", ts: 1 * M },
      { user: "b", type: "add_to_cart", ts: 3 * M },
      { user: "a", type: "purchase", ts: 10 * M },
      { user: "c", type: "page_view", ts: 70 * M },
    ];
    for (const d of [converted, abandoned])
      for (const e of evs) d.pipe(e, { key: e.user, timestamp: e.ts });
    expect(converted.results.map((r) => [r.id, r.windowStart, r.windowEnd])).toEqual([
      [`${90_000}:0:a`, 90_000, 10 * M + 1],
    ]);
    expect(converted.results[0]?.value).toEqual({
      events: [
        { step: "view", timestamp: 90_000, value: evs[1] },
        { step: "cart", timestamp: 2 * M, value: evs[0] },
        { step: "purchase", timestamp: 10 * M, value: evs[4] },
      ],
    });
    expect(abandoned.results.map((r) => [r.id, r.windowEnd])).toEqual([[`${M}:0:b`, 31 * M + 1]]);
    expect(abandoned.results[0]?.value).toEqual({
      events: [
        { step: "view", timestamp: M, value: evs[2] },
        { step: "cart", timestamp: 3 * M, value: evs[3] },
      ],
    });
  });

  it("drops a partial match older than the bound and starts again", () => {
    const d = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } }).match(
        funnel().select((m) => m.events.map((e) => e.timestamp)),
      ),
    );
    for (const [type, ts] of [
      ["page_view", 0],
      ["page_view", 40 * M],
      ["add_to_cart", 41 * M],
      ["other", 100 * M],
    ] as const)
      d.pipe({ user: "u", type, ts }, { key: "u", timestamp: ts });
    expect(d.results.map((r) => r.value)).toEqual([[40 * M, 41 * M]]);
    expect(d.state().length).toBeGreaterThan(0); // the last event still waits for its grace
  });

  it("validates patterns and stateful steps", () => {
    const bad = (fn: () => unknown, re: RegExp) => {
      try {
        fn();
        expect.unreachable();
      } catch (err) {
        expect(WindowingError.isInstance(err)).toBe(true);
        expect((err as WindowingError).code).toBe("WINDOWING_INVALID_OPTIONS");
        expect((err as Error).message).toMatch(re);
      }
    };
    bad(() => pattern({} as never), /within/);
    bad(() => pattern({ within: 0 }), /> 0/);
    bad(
      () =>
        pattern({ within: 5 })
          .step("a", () => true)
          .step("a", () => true),
      /unique/,
    );
    bad(
      () =>
        pattern({ within: 5 })
          .step("a", () => true)
          .notFollowedBy("b", () => true)
          .step("c", () => true),
      /last step/,
    );
    bad(() => pattern({ within: 5 }).notFollowedBy("b", () => true), /step before/);
    bad(
      () =>
        defineJob().match(
          pattern({ within: 5 })
            .step("a", () => true)
            .step("b", () => true, { optional: true }),
        ),
      /cannot be optional/,
    );
    bad(() => defineJob().match(pattern({ within: 5 })), /at least one step/);
    bad(
      () =>
        defineJob()
          .window(tumbling({ size: 1 }))
          .match(pattern({ within: 5 }).step("a", () => true)),
      /one stateful step/,
    );
    bad(
      () =>
        defineJob()
          .match(pattern({ within: 5 }).step("a", () => true))
          .filter(() => true),
      /must come before/,
    );
    bad(() => defineJob().join({ topic: "r", schema: json() }, {} as never), /within/);
    bad(
      () => defineJob().join({ topic: "r", schema: json() }, { within: 1, type: "cross" as never }),
      /join type/,
    );
    bad(() => defineJob().joinTable({ topic: "", schema: json() }), /needs a topic/);
    bad(
      () =>
        createJob({
          brokers: ["127.0.0.1:1"],
          applicationId: "x",
          source: { topic: "a", schema: json() },
          stateDir: "/tmp/x",
        }).join({ topic: "a", schema: json() }, { within: 1 }),
      /other than the job's source/,
    );
  });
});
