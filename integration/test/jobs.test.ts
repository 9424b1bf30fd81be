// The three reference jobs, run in-process on the windowing engine's
// TestDriver (no Kafka), must reproduce the generator's ground truth exactly:
// this pins the job definitions and the engine's window semantics (session
// merging, epoch-aligned windows, grace, late and dead-letter handling).
import { createTestDriver, defineJob, type TestDriver } from "@sluice/windowing";
import { describe, expect, it } from "vitest";
import {
  computeGroundTruth,
  type GeneratedRecord,
  generateEvents,
  type UserEvent,
} from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
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
