// Retractions under SIGKILL: a session job (emit update) whose input keeps
// bridging sessions is killed at random moments; its read_committed output,
// applied downstream as upserts (highest emitSeq per window wins) and
// retractions (delete), must leave exactly the sessions the brute-force
// oracle computes, and equal record for record the TestDriver's output.
//
// Knobs: SLUICE_RETRACT_EVENTS (30,000), SLUICE_RETRACT_KILLS (3),
// SLUICE_CRASH_SEED.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import {
  count,
  createTestDriver,
  defineJob,
  isRetraction,
  session,
  sum,
  type WindowResult,
} from "../src/index.js";
import { killRepeatedly, stopJob } from "./crash-harness.js";
import { brokerFixture, brokers, createTopic, readAll, uniqueName } from "./kafka-helpers.js";
import { finalWindows, type Rec } from "./oracle.js";
import { produceInChunks } from "./tumbling-scenario.js";

type Ev = { user: string; amount: number; ts: number };
type Out = { n: number; total: number };
const { kafka, admin, prefixes, dirs, children } = brokerFixture();

it("SIGKILL at random moments: output applied as upserts and retractions equals the oracle's sessions", {
  timeout: 300_000,
}, async () => {
  const base = uniqueName("wretract");
  prefixes.push(base);
  const source = `${base}-events`;
  const output = `${base}-out`;
  const partitions = 3;
  const total = Number(process.env.SLUICE_RETRACT_EVENTS ?? 30_000);
  await createTopic(admin, source, partitions);
  const stateDir = mkdtempSync(path.join(tmpdir(), "wretract-"));
  dirs.push(stateDir);

  // 200 users, one event every 1,000 ms of event time each (gap 1000: in
  // order, consecutive events just join); every fifth arrives 2,500 ms
  // late, between sessions that were already emitted, and bridges them.
  const spec = session({ gap: 1000, grace: 5000 });
  const users = 200;
  const msgs: { ev: Ev; partition: number }[] = [];
  for (let i = 0; i < total; i++) {
    const u = (i * 7919) % users;
    const late = i % 5 === 0 ? 2500 : 0;
    const spread = (i * 37) % 400;
    msgs.push({
      ev: { user: `u${u}`, amount: (i % 5) + 1, ts: i * 5 + spread - late + 10_000 },
      partition: u % partitions,
    });
  }
  for (let p = 0; p < partitions; p++) {
    msgs.push({ ev: { user: `end${p}`, amount: 0, ts: total * 5 + 100_000 }, partition: p });
  }
  const driver = createTestDriver(
    defineJob<Ev>({ source: { eventTime: "ts" } })
      .window(spec)
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .emit("update"),
    { partitions },
  );
  for (const { ev, partition } of msgs)
    driver.pipe(ev, { key: ev.user, partition, timestamp: ev.ts });
  const expected = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
  // the oracle, per partition (stream time is per partition)
  const oracle = new Map<string, Out>();
  for (let p = 0; p < partitions; p++) {
    const recs: Rec[] = msgs
      .filter((m) => m.partition === p)
      .map((m) => ({ key: m.ev.user, ts: m.ev.ts, v: m.ev.amount }));
    for (const w of finalWindows(spec, recs)) {
      oracle.set(`${w.key}|${w.start}|${w.end}`, {
        n: w.values.length,
        total: w.values.reduce((a, b) => a + b, 0),
      });
    }
  }
  expect(driver.late).toEqual([]);
  const env = {
    BROKERS: brokers.join(","),
    APP: base,
    SOURCE: source,
    OUTPUT: output,
    STATE_DIR: stateDir,
    WINDOW: "session",
    RETRACTIONS: process.env.SLUICE_RETRACT_OFF ? "false" : "true",
  };

  const producing = produceInChunks(kafka, source, msgs, 20, 400);
  const { kills, last } = await killRepeatedly({
    admin,
    children,
    env,
    groupId: base,
    source,
    total,
    kills: Number(process.env.SLUICE_RETRACT_KILLS ?? 3),
    seed: Number(process.env.SLUICE_CRASH_SEED ?? 4242),
    producing,
  });
  const rows = await readAll(kafka, admin, output, 120_000);
  await stopJob(last);
  const results = rows.map((r) => JSON.parse(r.value as string) as WindowResult<Out>);

  // downstream: one row per window, the highest emitSeq wins, a retraction deletes
  const table = new Map<string, WindowResult<Out>>();
  for (const r of results) {
    const k = `${r.key}|${r.windowStart}|${r.windowEnd}`;
    const prev = table.get(k);
    if (!prev || prev.emitSeq < r.emitSeq) table.set(k, r);
  }
  const live = new Map<string, Out>();
  for (const [k, r] of table) if (!isRetraction(r)) live.set(k, r.value);

  const retractions = results.filter((r) => isRetraction(r)).length;
  expect(kills).toBeGreaterThanOrEqual(1);
  expect(live.size).toBe(oracle.size);
  expect(new Map([...live].sort())).toEqual(new Map([...oracle].sort()));
  expect(retractions).toBeGreaterThan(total / 20);
  const got = results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
  expect(got.length).toBe(expected.length);
  expect(got).toEqual(expected);
});
