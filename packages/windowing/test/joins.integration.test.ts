// Joins on the real broker: co-partitioning is checked at start; a
// stream–table join materializes a compacted topic (updates, tombstones) and
// enriches a stream exactly as the TestDriver does.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Admin, Kafka } from "kafkajs";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  createJob,
  createTestDriver,
  defineJob,
  WindowingError,
  type WindowResult,
} from "../src/index.js";
import {
  createTopic,
  deleteTopicsWithPrefix,
  kafkaClient,
  produce,
  readAll,
  uniqueName,
} from "./kafka-helpers.js";

type Ev = { user: string; n: number; ts: number };
type Profile = { country: string };
const json = <T>() => ({ decode: (b: Buffer) => JSON.parse(b.toString("utf8")) as T });

let kafka: Kafka;
let admin: Admin;
const prefixes: string[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  kafka = kafkaClient();
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await deleteTopicsWithPrefix(admin, prefixes);
  await admin.disconnect();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("refuses to start a join of topics with different partition counts", async () => {
  const base = uniqueName("jcopart");
  prefixes.push(base);
  await createTopic(admin, `${base}-a`, 3);
  await createTopic(admin, `${base}-b`, 2);
  const stateDir = mkdtempSync(path.join(tmpdir(), "jcopart-"));
  dirs.push(stateDir);
  const job = createJob<Ev>({
    kafka,
    applicationId: base,
    source: { topic: `${base}-a`, schema: json<Ev>() },
    stateDir,
    handleSignals: false,
  }).join({ topic: `${base}-b`, schema: json<Ev>() }, { within: "1m" });
  const err = await job.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  await job.stop();
  expect(WindowingError.isInstance(err)).toBe(true);
  expect((err as WindowingError).code).toBe("WINDOWING_NOT_COPARTITIONED");
  expect((err as Error).message).toMatch(/has 2 partitions but the source .* has 3/);
});

it("stream–table join (at-least-once): latest row per key, tombstones delete, equal to the TestDriver", async () => {
  const base = uniqueName("jtable");
  prefixes.push(base);
  const events = `${base}-events`;
  const profiles = `${base}-profiles`;
  const output = `${base}-out`;
  await createTopic(admin, events, 3);
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic: profiles,
        numPartitions: 3,
        configEntries: [{ name: "cleanup.policy", value: "compact" }],
      },
    ],
  });
  const stateDir = mkdtempSync(path.join(tmpdir(), "jtable-"));
  dirs.push(stateDir);
  const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
  const countries = ["FR", "DE", "JP", "BR"];
  // rows: every user, then updates for a third, tombstones for a fifth
  const rows: { key: string; value: string | null }[] = [];
  for (const [i, u] of users.entries())
    rows.push({ key: u, value: JSON.stringify({ country: countries[i % 4] }) });
  for (const [i, u] of users.entries()) {
    if (i % 3 === 0) rows.push({ key: u, value: JSON.stringify({ country: `X${i}` }) });
    if (i % 5 === 0) rows.push({ key: u, value: null });
  }
  const evs: Ev[] = Array.from({ length: 600 }, (_, i) => ({
    user: users[(i * 7) % users.length] as string,
    n: i,
    ts: 1_000 * i,
  }));
  const select = (e: Ev, p: Profile | null) => ({ n: e.n, country: p?.country ?? null });
  const driver = createTestDriver(
    defineJob<Ev>({ source: { eventTime: "ts" } }).joinTable<Profile, ReturnType<typeof select>>(
      { topic: profiles, schema: json<Profile>() },
      { type: "left", select },
    ),
  );
  for (const r of rows) driver.pipeRaw(r.value, { key: r.key, source: profiles, timestamp: 0 });
  for (const e of evs) driver.pipe(e, { key: e.user, timestamp: e.ts });
  const expected = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();

  await produce(kafka, profiles, rows);
  const job = createJob<Ev>({
    kafka,
    applicationId: base,
    source: { topic: events, schema: json<Ev>(), eventTime: "ts" },
    stateDir,
    guarantee: "at-least-once",
    commitIntervalMs: 100,
    handleSignals: false,
  })
    .joinTable<Profile, ReturnType<typeof select>>(
      { topic: profiles, schema: json<Profile>() },
      { type: "left", select },
    )
    .to({ topic: output });
  await job.start();
  try {
    // the table is materialized before the stream starts
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [committed] = await admin.fetchOffsets({ groupId: base, topics: [profiles] });
      const done = committed?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0);
      if (done === rows.length) break;
      if (Date.now() > deadline) throw new Error("the table was not consumed");
      await sleep(300);
    }
    await produce(
      kafka,
      events,
      evs.map((e) => ({ key: e.user, value: JSON.stringify(e) })),
    );
    let got: string[] = [];
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      got = (await readAll(kafka, admin, output)).map((r) => {
        const w = JSON.parse(r.value as string) as WindowResult<unknown>;
        return `${w.id}=${JSON.stringify(w.value)}`;
      });
      if (got.length >= expected.length) break;
      await sleep(500);
    }
    expect(got.sort()).toEqual(expected);
    expect(expected.filter((x) => x.includes('"country":null')).length).toBeGreaterThan(0);
  } finally {
    await job.stop();
  }
});
