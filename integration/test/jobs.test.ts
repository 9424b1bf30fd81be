// The reference jobs, run in-process on the windowing engine's
// TestDriver (no Kafka), must reproduce the generator's ground truth exactly:
// this pins the job definitions and the engine's window semantics (session
// merging, epoch-aligned windows, grace, late and dead-letter handling; the
// funnel's pattern semantics against the brute-force funnel of the truth).
import { createTestDriver, defineJob, type TestDriver } from "@sluice/windowing";
import { describe, expect, it } from "vitest";
import {
  computeFunnelTruth,
  computeGroundTruth,
  type GeneratedRecord,
  generateEvents,
  type JobSettings,
  type UserEvent,
} from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { FUNNEL_OUTCOMES, funnelPipeline, funnelRow } from "../src/pipeline/funnel.js";
import { minuteCountRow, type SessionValue, sessionRow } from "../src/pipeline/rows.js";
import { UserEventCodec } from "../src/pipeline/user-event-codec.js";
import { countsPipeline, pagesPipeline, sessionsPipeline } from "../src/services/jobs.js";

const config = pipelineConfig("unit");
const g = generateEvents({ count: 20_000, seed: 21 });
const truth = computeGroundTruth(g.records, config.windows);

function source() {
  return defineJob<UserEvent>({ source: { schema: UserEventCodec, eventTime: "ts" } });
}

function feed<V>(driver: TestDriver<UserEvent, V>, records: readonly GeneratedRecord[]) {
  let maxTs = 0;
  for (const r of records) {
    const bytes = r.kind === "invalid" ? r.raw! : JSON.stringify(r.event);
    driver.pipeRaw(bytes, { key: r.key, partition: r.partition });
    if (r.event && r.event.ts > maxTs) maxTs = r.event.ts;
  }
  // End of input: move every partition far enough ahead to close all windows.
  driver.advanceStreamTime(maxTs + config.repartitionGraceMs + 24 * 3_600_000);
}

describe("reference jobs on the TestDriver", () => {
  it("sessions: every user session equals the ground truth", () => {
    const driver = createTestDriver(sessionsPipeline(source(), config), { partitions: 12 });
    feed(driver, g.records);
    const finals = driver.results.filter((r) => r.final);
    const rows = finals
      .map((r) => sessionRow({ ...r, value: r.value as SessionValue }))
      .map(({ emit_seq: _s, result_id: _r, day: _d, ...s }) => s)
      .sort(
        (a, b) =>
          (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0) ||
          a.session_start - b.session_start,
      );
    expect(rows).toEqual(truth.sessions);
    expect(driver.dlq).toHaveLength(truth.totals.invalid);
    expect(driver.late).toHaveLength(truth.totals.late);
  });

  it("counts: every (minute, type) count equals the ground truth", () => {
    const driver = createTestDriver(countsPipeline(source(), config), { partitions: 12 });
    feed(driver, g.records);
    const rows = driver.results
      .filter((r) => r.final)
      .map((r) => minuteCountRow({ ...r, value: r.value as number }))
      .map(({ window_start, type, count }) => ({ window_start, type, count }))
      .sort((a, b) => a.window_start - b.window_start || (a.type < b.type ? -1 : 1));
    expect(rows).toEqual(truth.minuteCounts);
    expect(driver.dlq).toHaveLength(truth.totals.invalid);
    expect(driver.late).toHaveLength(truth.totals.late);
  });

  it("pages: every (hopping window, page) count equals the ground truth", () => {
    const driver = createTestDriver(pagesPipeline(source(), config), { partitions: 12 });
    feed(driver, g.records);
    const got = driver.results
      .filter((r) => r.final)
      .map((r) => `${r.windowStart}|${r.windowEnd}|${r.key}|${r.value as number}`)
      .sort();
    const want = truth.pageWindows
      .map((w) => `${w.window_start}|${w.window_end}|${w.page}|${w.count}`)
      .sort();
    expect(got).toEqual(want);
    expect(driver.late).toHaveLength(truth.totals.late);
  });
});

/** Both funnel jobs on the TestDriver: their matches as truth rows, and the late count of each. */
function runFunnel(records: readonly GeneratedRecord[], settings: JobSettings, partitions: number) {
  const rows = [];
  const late: number[] = [];
  for (const outcome of FUNNEL_OUTCOMES) {
    const driver = createTestDriver(funnelPipeline(source(), outcome, settings), { partitions });
    feed(driver, records);
    for (const r of driver.results) {
      const { result_id: _i, hour: _h, day: _d, ...row } = funnelRow(r, outcome);
      rows.push(row);
    }
    late.push(driver.late.length);
  }
  rows.sort(
    (a, b) =>
      (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0) ||
      a.view_ts - b.view_ts ||
      (a.outcome < b.outcome ? -1 : 1),
  );
  return { rows, late };
}

describe("funnel jobs on the TestDriver against the brute-force funnel", () => {
  it("reference settings: every conversion and abandonment equals the ground truth", () => {
    const { rows, late } = runFunnel(g.records, config.windows, 12);
    expect(rows).toEqual(truth.funnel.matches);
    expect(late).toEqual([truth.funnel.late, truth.funnel.late]);
    // With a 30 s grace the funnel drops exactly the generator's late records.
    expect(truth.funnel.late).toBe(truth.totals.late);
    const count = (o: string) => rows.filter((r) => r.outcome === o).length;
    expect(count("converted")).toBeGreaterThan(50);
    expect(count("abandoned")).toBeGreaterThan(50);
    const hours = truth.funnel.hours;
    expect(hours.reduce((a, h) => a + h.converted + h.abandoned, 0)).toBe(rows.length);
    expect(hours.reduce((a, h) => a + h.views, 0)).toBe(
      truth.minuteCounts.filter((m) => m.type === "page_view").reduce((a, m) => a + m.count, 0),
    );
  });

  it("a grace shorter than the disorder and a short bound: lateness and expiry as the job sees them", () => {
    // 2 s of grace against up to 5 s of disorder makes some valid events late
    // for the funnel only; a 4-minute bound makes many matches expire.
    const g2 = generateEvents({ count: 15_000, seed: 8, partitions: 4, maxDisorderMs: 5000 });
    const settings = { ...config.windows, funnelGraceMs: 2000, funnelWithinMs: 4 * 60_000 };
    const t2 = computeFunnelTruth(g2.records, settings);
    const kinds = computeGroundTruth(g2.records).totals;
    expect(t2.late).toBeGreaterThan(kinds.late);
    const { rows, late } = runFunnel(g2.records, settings, 4);
    expect(rows).toEqual(t2.matches);
    expect(late).toEqual([t2.late, t2.late]);
    expect(rows.filter((r) => r.outcome === "abandoned").length).toBeGreaterThan(20);
  });

  it("the brute force itself: bound and grace inclusive, one open match per user, purchase closes it", () => {
    const base = Date.UTC(2026, 0, 1, 10);
    const min = 60_000;
    const evs: Array<[string, UserEvent["type"], number]> = [
      // a: view, cart, purchase exactly at the bound -> converted (bound inclusive)
      ["a", "page_view", 0],
      ["a", "add_to_cart", 5 * min],
      ["a", "purchase", 30 * min],
      // b: view, cart, purchase 1 ms after the bound -> abandoned; the purchase starts nothing
      ["b", "page_view", 0],
      ["b", "add_to_cart", min],
      ["b", "purchase", 30 * min + 1],
      // c: a second view while the first match is open is skipped; no cart -> nothing
      ["c", "page_view", 0],
      ["c", "page_view", min],
      ["c", "click", 2 * min],
      // c: a view after the bound opens a new match, which converts
      ["c", "page_view", 31 * min],
      ["c", "add_to_cart", 32 * min],
      ["c", "add_to_cart", 33 * min],
      ["c", "purchase", 34 * min],
    ];
    const records: GeneratedRecord[] = evs.map(([user, type, at], seq) => ({
      seq,
      key: user,
      partition: 0,
      kind: "valid",
      event: {
        event_id: `x${seq}`,
        user_id: user,
        type,
        page: "/",
        ts: base + at,
        ...(type === "purchase" ? { revenue_cents: 100 + seq } : {}),
      },
    }));
    // Partition 0 in event-time order: nothing late there.
    records.sort((a, b) => a.event!.ts - b.event!.ts);
    // Partition 1, in this send order: stream time 100 s; a view exactly the
    // grace (30 s) behind it is on time, a cart 1 ms more behind is late.
    const sec = 1000;
    const p1: Array<[string, UserEvent["type"], number]> = [
      ["e", "click", 100 * sec],
      ["d", "page_view", 70 * sec],
      ["d", "add_to_cart", 70 * sec - 1],
      ["d", "add_to_cart", 80 * sec],
    ];
    for (const [user, type, at] of p1) {
      const seq = records.length;
      const event = { event_id: `y${seq}`, user_id: user, type, page: "/", ts: base + at };
      records.push({ seq, key: user, partition: 1, kind: "valid", event });
    }
    const t = computeFunnelTruth(records, config.windows);
    expect(t.late).toBe(1);
    expect(t.matches.map((m) => `${m.user_id} ${m.outcome} ${(m.view_ts - base) / min}`)).toEqual([
      "a converted 0",
      "b abandoned 0",
      "c converted 31",
      `d abandoned ${70 / 60}`,
    ]);
    const { rows, late } = runFunnel(records, config.windows, 2);
    expect(rows).toEqual(t.matches);
    expect(late).toEqual([1, 1]);
  });
});
