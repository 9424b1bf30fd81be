import { describe, expect, it } from "vitest";
import {
  computeGroundTruth,
  createKeyPartitioner,
  createRandom,
  type GeneratedRecord,
  generateEvents,
  topPages,
  type UserEvent,
  ZipfSampler,
} from "../src/generator/index.js";

describe("createRandom / ZipfSampler", () => {
  it("gives the same sequence for the same seed and another for another seed", () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const c = createRandom(43);
    const sa = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(sa);
    for (const v of sa) expect(v >= 0 && v < 1).toBe(true);
  });

  it("skews draws toward low ranks in proportion to 1/(k+1)^s", () => {
    const zipf = new ZipfSampler(100, 1);
    const r = createRandom(1);
    const counts = new Array(100).fill(0);
    const n = 50_000;
    for (let i = 0; i < n; i++) counts[zipf.sample(r)]++;
    expect(counts[0] / n).toBeCloseTo(zipf.probability(0), 1);
    expect(counts[0]).toBeGreaterThan(counts[1]);
    expect(counts[1]).toBeGreaterThan(counts[10]);
    // rank 0 is about twice rank 1 at s = 1
    expect(counts[0] / counts[1]).toBeGreaterThan(1.7);
    expect(counts[0] / counts[1]).toBeLessThan(2.3);
  });

  it("rejects nonsense parameters", () => {
    expect(() => new ZipfSampler(0, 1)).toThrow(RangeError);
    expect(() => new ZipfSampler(10, -1)).toThrow(RangeError);
  });
});

describe("createKeyPartitioner", () => {
  it("is kafkajs's murmur2 default partitioner: stable and within range", () => {
    const p = createKeyPartitioner(12);
    const q = createKeyPartitioner(12);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const k = `u${i}`;
      expect(p(k)).toBe(q(k));
      expect(p(k)).toBeGreaterThanOrEqual(0);
      expect(p(k)).toBeLessThan(12);
      seen.add(p(k));
    }
    expect(seen.size).toBe(12);
  });
});

describe("generateEvents", () => {
  const opts = { count: 20_000, seed: 3 };
  const g = generateEvents(opts);

  it("is deterministic for a seed", () => {
    const again = generateEvents(opts);
    expect(again.records).toEqual(g.records);
    const other = generateEvents({ ...opts, seed: 4 });
    expect(other.records.slice(0, 50)).not.toEqual(g.records.slice(0, 50));
  });

  it("produces exactly `count` records with unique ids and the configured mix", () => {
    expect(g.records).toHaveLength(20_000);
    const ids = new Set(g.records.filter((r) => r.event).map((r) => r.event!.event_id));
    expect(ids.size).toBe(g.records.filter((r) => r.event).length);
    const kinds = { valid: 0, late: 0, invalid: 0 };
    for (const r of g.records) kinds[r.kind]++;
    expect(kinds.invalid).toBeGreaterThan(40);
    expect(kinds.invalid).toBeLessThan(170);
    expect(kinds.late).toBeGreaterThan(40);
    expect(kinds.late).toBeLessThan(170);
    const types = new Set(g.records.map((r) => r.event?.type));
    for (const t of ["page_view", "click", "add_to_cart", "purchase"]) expect(types).toContain(t);
  });

  it("gives revenue to purchases only, in whole cents", () => {
    for (const r of g.records) {
      const e = r.event;
      if (!e) continue;
      if (e.type === "purchase") expect(Number.isInteger(e.revenue_cents)).toBe(true);
      else expect(e.revenue_cents).toBeUndefined();
    }
  });

  it("keeps out-of-order events within maxDisorderMs of their partition's stream time", () => {
    const st = new Map<number, number>();
    let outOfOrder = 0;
    for (const r of g.records) {
      if (r.kind !== "valid") continue;
      const cur = st.get(r.partition);
      if (cur !== undefined && r.event!.ts < cur) {
        outOfOrder++;
        expect(cur - r.event!.ts).toBeLessThanOrEqual(g.options.maxDisorderMs);
      }
      st.set(r.partition, Math.max(cur ?? 0, r.event!.ts));
    }
    expect(outOfOrder).toBeGreaterThan(100);
  });

  it("puts late events at least lateByMs - maxDisorderMs behind their partition's stream time", () => {
    const st = new Map<number, number>();
    for (const r of g.records) {
      if (r.kind === "late") {
        const cur = st.get(r.partition);
        expect(cur).toBeDefined();
        expect(cur! - r.event!.ts).toBeGreaterThanOrEqual(
          g.options.lateByMs - g.options.maxDisorderMs,
        );
      } else if (r.kind === "valid") {
        st.set(r.partition, Math.max(st.get(r.partition) ?? 0, r.event!.ts));
      }
    }
  });

  it("makes an event late only after its partition sent a valid event of the same type and page", () => {
    // A job re-keyed by type or page reads it from a repartition partition
    // that must already have a stream time when it arrives.
    const seen = new Map<number, Set<string>>();
    let late = 0;
    for (const r of g.records) {
      const e = r.event;
      if (r.kind === "late") {
        late++;
        expect(seen.get(r.partition)?.has(`t:${e!.type}`)).toBe(true);
        expect(seen.get(r.partition)?.has(`p:${e!.page}`)).toBe(true);
      } else if (r.kind === "valid") {
        const s = seen.get(r.partition) ?? new Set<string>();
        s.add(`t:${e!.type}`).add(`p:${e!.page}`);
        seen.set(r.partition, s);
      }
    }
    expect(late).toBeGreaterThan(40);
  });

  it("labels invalid records with bytes that are not a valid event", () => {
    const bad = g.records.filter((r) => r.kind === "invalid");
    const reasons = new Set(bad.map((r) => r.invalidReason));
    expect(reasons.size).toBe(5);
    for (const r of bad) {
      expect(r.event).toBeUndefined();
      let parsed: Partial<UserEvent> | undefined;
      try {
        parsed = JSON.parse(r.raw!);
      } catch {
        expect(r.invalidReason).toBe("not-json");
        continue;
      }
      const broken =
        typeof parsed?.user_id !== "string" ||
        !["page_view", "click", "add_to_cart", "purchase"].includes(parsed.type as string) ||
        typeof parsed.ts !== "number" ||
        (parsed.revenue_cents !== undefined && parsed.revenue_cents < 0);
      expect(broken).toBe(true);
    }
  });

  it("skews users: the hottest user has far more events than the median one", () => {
    const perUser = new Map<string, number>();
    for (const r of g.records) perUser.set(r.key, (perUser.get(r.key) ?? 0) + 1);
    const counts = [...perUser.values()].sort((a, b) => b - a);
    expect(counts[0]!).toBeGreaterThan(20 * counts[Math.floor(counts.length / 2)]!);
  });

  it("rejects invalid options", () => {
    expect(() => generateEvents({ count: -1 })).toThrow(RangeError);
    expect(() => generateEvents({ count: 10, lateFraction: 2 })).toThrow(RangeError);
    expect(() => generateEvents({ count: 10, users: 0 })).toThrow(RangeError);
    expect(generateEvents({ count: 0 }).records).toEqual([]);
  });
});

function rec(seq: number, e: Omit<UserEvent, "event_id">, kind: GeneratedRecord["kind"] = "valid") {
  return {
    seq,
    key: e.user_id,
    partition: 0,
    kind,
    event: { event_id: `x${seq}`, ...e },
  } satisfies GeneratedRecord;
}

describe("computeGroundTruth", () => {
  const M = 60_000;
  const T = 1_000 * M; // a minute boundary
  const records: GeneratedRecord[] = [
    rec(0, { user_id: "a", type: "page_view", page: "/", ts: T }),
    rec(1, {
      user_id: "a",
      type: "purchase",
      page: "/checkout",
      ts: T + 10 * M,
      revenue_cents: 500,
    }),
    // exactly the gap after the last event: same session
    rec(2, { user_id: "a", type: "click", page: "/", ts: T + 40 * M }),
    // more than the gap: new session
    rec(3, { user_id: "a", type: "page_view", page: "/x", ts: T + 70 * M + 1 }),
    rec(4, { user_id: "b", type: "page_view", page: "/x", ts: T + 30_000 }),
    rec(5, { user_id: "b", type: "page_view", page: "/", ts: T - 3 * 3_600_000 }, "late"),
    { seq: 6, key: "c", partition: 0, kind: "invalid", raw: "{", invalidReason: "not-json" },
  ];
  const truth = computeGroundTruth(records);

  it("splits sessions on gaps larger than 30 minutes and sums events and revenue", () => {
    expect(truth.sessions).toEqual([
      {
        user_id: "a",
        session_start: T,
        session_end: T + 40 * M,
        duration_ms: 40 * M,
        events: 3,
        revenue_cents: 500,
      },
      {
        user_id: "a",
        session_start: T + 70 * M + 1,
        session_end: T + 70 * M + 1,
        duration_ms: 0,
        events: 1,
        revenue_cents: 0,
      },
      {
        user_id: "b",
        session_start: T + 30_000,
        session_end: T + 30_000,
        duration_ms: 0,
        events: 1,
        revenue_cents: 0,
      },
    ]);
  });

  it("counts per type per minute, ignoring late and invalid records", () => {
    expect(truth.minuteCounts).toEqual([
      { window_start: T, type: "page_view", count: 2 },
      { window_start: T + 10 * M, type: "purchase", count: 1 },
      { window_start: T + 40 * M, type: "click", count: 1 },
      { window_start: T + 70 * M, type: "page_view", count: 1 },
    ]);
    expect(truth.totals).toMatchObject({ records: 7, valid: 5, late: 1, invalid: 1 });
    expect(truth.totals.revenueCents).toBe(500);
  });

  it("puts every event in the five 5-minute windows that advance by a minute over it", () => {
    const windowsOfFirst = truth.pageWindows
      .filter((w) => w.page === "/" && w.window_start <= T && w.window_end > T)
      .map((w) => w.window_start);
    expect(windowsOfFirst).toEqual([T - 4 * M, T - 3 * M, T - 2 * M, T - M, T]);
    expect(topPages(truth, T, 5)).toEqual([
      { page: "/", count: 1 },
      { page: "/x", count: 1 },
    ]);
  });

  it("agrees with itself on a generated stream: every valid event counted once per job", () => {
    const g = generateEvents({ count: 5_000, seed: 9 });
    const t = computeGroundTruth(g.records);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(t.sessions.map((s) => s.events))).toBe(t.totals.valid);
    expect(sum(t.minuteCounts.map((m) => m.count))).toBe(t.totals.valid);
    expect(sum(t.pageWindows.map((w) => w.count))).toBe(5 * t.totals.valid);
    expect(sum(t.sessions.map((s) => s.revenue_cents))).toBe(t.totals.revenueCents);
    expect(t.totals.valid + t.totals.late + t.totals.invalid).toBe(5_000);
  });
});
