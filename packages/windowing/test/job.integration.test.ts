import diagnostics from "node:diagnostics_channel";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openStateStore } from "@sluice/state";
import type { Admin, Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  count,
  createJob,
  createTestDriver,
  defineJob,
  sum,
  tumbling,
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

type Ev = { user: string; amount: number; ts: number };
const schema = {
  decode(bytes: Buffer): Ev {
    const v = JSON.parse(bytes.toString("utf8")) as Ev;
    if (typeof v.user !== "string" || typeof v.amount !== "number")
      throw new Error("invalid event");
    return v;
  },
};

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

function events(n: number, users: number, partitions: number) {
  const out: { ev: Ev; partition: number }[] = [];
  for (let i = 0; i < n; i++) {
    const u = i % users;
    out.push({
      ev: { user: `u${u}`, amount: (i % 7) + 1, ts: 1_000 * Math.floor(i / 10) },
      partition: u % partitions,
    });
  }
  return out;
}

/**
 * What the tests' job (count and sum per user, tumbling 1 minute) emits for
 * `evs`, as the TestDriver computes it: `id=value` lines, sorted.
 */
function expectedResults(evs: { ev: Ev; partition: number }[], partitions: number): string[] {
  const driver = createTestDriver(
    defineJob<Ev>({ source: { eventTime: "ts" } })
      .window(tumbling({ size: "1m" }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) }),
    { partitions },
  );
  for (const { ev, partition } of evs)
    driver.pipe(ev, { key: ev.user, partition, timestamp: ev.ts });
  driver.advanceStreamTime(10_000_000);
  return driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
}

/** A job's output topic as `id=value` lines, sorted. */
async function outputResults(output: string): Promise<string[]> {
  return (await readAll(kafka, admin, output))
    .map((r) => {
      const w = JSON.parse(r.value as string) as WindowResult<unknown>;
      return `${w.id}=${JSON.stringify(w.value)}`;
    })
    .sort();
}

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("condition not met in time");
}

describe.each(["exactly-once", "at-least-once"] as const)("Kafka job (%s)", (guarantee) => {
  it("aggregates per user into an output topic equal to the TestDriver, dead-letters bad records", async () => {
    const base = uniqueName("wjob");
    prefixes.push(base);
    const source = `${base}-events`;
    const output = `${base}-out`;
    await createTopic(admin, source, 3);
    const evs = events(3_000, 30, 3);
    await produce(kafka, source, [
      ...evs.map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition })),
      { key: "bad", value: "{nope", partition: 0 },
    ]);
    // one far-future event per partition closes every window
    await produce(
      kafka,
      source,
      [0, 1, 2].map((p) => ({
        key: `end${p}`,
        value: JSON.stringify({ user: `end${p}`, amount: 0, ts: 10_000_000 }),
        partition: p,
      })),
    );
    const stateDir = mkdtempSync(path.join(tmpdir(), "wjob-"));
    dirs.push(stateDir);
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      guarantee,
      commitIntervalMs: 200,
      handleSignals: false,
    })
      .window(tumbling({ size: "1m" }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .to({ topic: output });
    // oracle: the same definition on the TestDriver
    const expected = expectedResults(evs, 3);

    await job.start();
    expect(job.status).toBe("open");
    let got: string[] = [];
    try {
      await waitFor(async () => {
        got = await outputResults(output);
        return got.length >= expected.length;
      }, 90_000);
    } finally {
      await job.stop();
    }
    expect(job.status).toBe("closed");
    expect(got.sort()).toEqual(expected);
    const dlq = await readAll(kafka, admin, `${base}-dlq`);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]?.value).toBe("{nope");
    expect(dlq[0]?.headers["sluice-source-partition"]).toBe("0");
    expect(dlq[0]?.headers["sluice-error-reason"]).toMatch(/JSON/);
  });
});

describe("Kafka job with idleCloseMs", () => {
  it("closes the windows of a quiet partition by the wall clock", async () => {
    const base = uniqueName("widle");
    prefixes.push(base);
    const source = `${base}-events`;
    await createTopic(admin, source, 2);
    const now = Date.now();
    await produce(kafka, source, [
      { key: "a", value: JSON.stringify({ user: "a", amount: 2, ts: now }), partition: 0 },
      { key: "a", value: JSON.stringify({ user: "a", amount: 3, ts: now + 1 }), partition: 0 },
      { key: "b", value: JSON.stringify({ user: "b", amount: 4, ts: now }), partition: 1 },
    ]);
    const stateDir = mkdtempSync(path.join(tmpdir(), "widle-"));
    dirs.push(stateDir);
    const results: WindowResult<{ n: number; total: number }>[] = [];
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      idleCloseMs: "1s",
      handleSignals: false,
    })
      .window(tumbling({ size: "2s" }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .to((rs) => {
        results.push(...rs);
      });
    await job.start();
    try {
      await waitFor(() => results.length >= 2, 30_000);
    } finally {
      await job.stop();
    }
    expect(results.map((r) => [r.key, r.value, r.final]).sort()).toEqual([
      ["a", { n: 2, total: 5 }, true],
      ["b", { n: 1, total: 4 }, true],
    ]);
  });
});

describe("Kafka job local state", () => {
  it("restarts from the local LevelDB copy and replays only the changelog delta; output stays exact", async () => {
    const base = uniqueName("wlocal");
    prefixes.push(base);
    const source = `${base}-events`;
    const output = `${base}-out`;
    await createTopic(admin, source, 1);
    const evs = events(2_000, 50, 1);
    const stateDir = mkdtempSync(path.join(tmpdir(), "wlocal-"));
    dirs.push(stateDir);
    const restores: { records: number }[] = [];
    let processed = 0;
    const onRestore = (m: unknown) => {
      if ((m as { applicationId: string }).applicationId === base)
        restores.push(m as { records: number });
    };
    const onRecords = (m: unknown) => {
      if ((m as { applicationId: string }).applicationId === base)
        processed += (m as { count: number }).count;
    };
    diagnostics.subscribe("sluice:job:restore", onRestore);
    diagnostics.subscribe("sluice:job:records", onRecords);
    const make = () =>
      createJob<Ev>({
        kafka,
        applicationId: base,
        source: { topic: source, schema, eventTime: "ts" },
        stateDir,
        handleSignals: false,
      })
        .window(tumbling({ size: "1m" }))
        .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
        .to({ topic: output });
    try {
      await produce(
        kafka,
        source,
        evs.slice(0, 1_000).map(({ ev }) => ({ key: ev.user, value: JSON.stringify(ev) })),
      );
      // A local copy of the earlier layout (JSON strings) is only a cache: removed at start.
      const old = await openStateStore<string>({ dir: stateDir, name: "windows", codec: "json" });
      old.partition(0).putSync('["l",0]', '{"w":[]}');
      await old.checkpoint({ partition: 0, sourceOffset: "0", streamTime: 0 });
      await old.close();
      const a = make();
      await a.start();
      expect(existsSync(path.join(stateDir, "windows"))).toBe(false);
      await waitFor(() => processed >= 1_000, 60_000);
      await a.stop();
      // The member's transactional id is kept for the next process on this directory.
      const txnId = readFileSync(path.join(stateDir, "transactional-id"), "utf8");
      expect(txnId).toMatch(/^[0-9a-f-]{36}$/);
      const store = await openStateStore<Buffer>({
        dir: stateDir,
        name: "window-changelog",
        codec: { name: "bytes", encode: (b: Buffer) => b, decode: (b: Buffer) => b },
      });
      const cp = await store.readCheckpoint(0);
      await store.close();
      expect(cp?.sourceOffset).toBe("1000");
      const changelogEnd = (await admin.fetchTopicOffsets(`${base}.windows.changelog`))[0]?.high;
      expect(Number(cp?.changelogOffset)).toBeGreaterThan(0);
      expect(Number(changelogEnd)).toBeGreaterThanOrEqual(Number(cp?.changelogOffset));

      await produce(kafka, source, [
        ...evs.slice(1_000).map(({ ev }) => ({ key: ev.user, value: JSON.stringify(ev) })),
        { key: "end", value: JSON.stringify({ user: "end", amount: 0, ts: 10_000_000 }) },
      ]);
      const b = make();
      await b.start();
      await waitFor(() => processed >= 2_001, 60_000);
      await b.stop();
      expect(readFileSync(path.join(stateDir, "transactional-id"), "utf8")).toBe(txnId);
    } finally {
      diagnostics.unsubscribe("sluice:job:restore", onRestore);
      diagnostics.unsubscribe("sluice:job:records", onRecords);
    }
    // the first start restored nothing; the second only the delta after the local checkpoint (none: clean stop)
    expect(restores.map((r) => r.records)).toEqual([0, 0]);
    expect(await outputResults(output)).toEqual(expectedResults(evs, 1));
  });
});

describe("Kafka job group offsets (exactly-once)", () => {
  it("every commit writes the group's offsets; resumes from the changelog's offset when the group's is behind", async () => {
    const base = uniqueName("wgroup");
    prefixes.push(base);
    const source = `${base}-events`;
    const output = `${base}-out`;
    await createTopic(admin, source, 2);
    const evs = events(2_000, 40, 2);
    let processed = 0;
    const onRecords = (m: unknown) => {
      if ((m as { applicationId: string }).applicationId === base)
        processed += (m as { count: number }).count;
    };
    // What the job's commits covered, per partition.
    const covered = new Map<number, bigint>();
    const onCommit = (m: unknown) => {
      const c = m as { applicationId: string; offsets: { partition: number; offset: string }[] };
      if (c.applicationId !== base) return;
      for (const o of c.offsets) covered.set(o.partition, BigInt(o.offset));
    };
    diagnostics.subscribe("sluice:job:records", onRecords);
    diagnostics.subscribe("sluice:job:commit", onCommit);
    const make = () => {
      const stateDir = mkdtempSync(path.join(tmpdir(), "wgroup-"));
      dirs.push(stateDir);
      return createJob<Ev>({
        kafka,
        applicationId: base,
        source: { topic: source, schema, eventTime: "ts" },
        stateDir,
        guarantee: "exactly-once",
        handleSignals: false,
      })
        .window(tumbling({ size: "1m" }))
        .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
        .to({ topic: output });
    };
    const send = (xs: typeof evs) =>
      produce(
        kafka,
        source,
        xs.map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition })),
      );
    const groupOffsets = async () => {
      const [t] = await admin.fetchOffsets({ groupId: base, topics: [source] });
      return (t?.partitions ?? []).map((p) => p.offset).sort();
    };
    const ends = async () => (await admin.fetchTopicOffsets(source)).map((p) => p.high).sort();
    const coveredAll = async () => {
      const e = await admin.fetchTopicOffsets(source);
      return e.every((p) => covered.get(p.partition) === BigInt(p.high));
    };
    try {
      await send(evs.slice(0, 500));
      const a = make();
      await a.start();
      // Every commit writes the group's offsets in its transaction (they
      // fence it): they become readable once the broker has written the
      // transaction's markers, which EndTxn does not wait for (an offset
      // fetch returns the last stable offset until then).
      await waitFor(coveredAll, 60_000);
      await waitFor(async () => (await groupOffsets()).join() === (await ends()).join(), 15_000);
      await send(evs.slice(500, 1_000));
      await waitFor(coveredAll, 60_000);
      const end1 = await ends();
      await waitFor(async () => (await groupOffsets()).join() === end1.join(), 15_000);
      expect(await groupOffsets()).toEqual(end1);
      await a.stop();
      // A group offset left behind (as by a member killed between two of
      // its writes): the restore resumes from the changelog's offset, so
      // nothing is processed twice.
      await admin.setOffsets({
        groupId: base,
        topic: source,
        partitions: [
          { partition: 0, offset: "0" },
          { partition: 1, offset: "0" },
        ],
      });
      await send([
        ...evs.slice(1_000),
        { ev: { user: "end", amount: 0, ts: 10_000_000 }, partition: 0 },
        { ev: { user: "end", amount: 0, ts: 10_000_000 }, partition: 1 },
      ]);
      const before = processed;
      const b = make(); // a fresh state directory: restored from the changelog alone
      await b.start();
      await waitFor(() => processed >= before + 1_002, 60_000);
      await b.stop();
      expect(processed - before).toBe(1_002);
      // The stop commit's group offsets become readable once the broker has
      // written its transaction markers, which EndTxn does not wait for (an
      // offset fetch returns the last stable offset until then).
      const end2 = await ends();
      await waitFor(async () => (await groupOffsets()).join() === end2.join(), 15_000);
      expect(await groupOffsets()).toEqual(end2);
    } finally {
      diagnostics.unsubscribe("sluice:job:records", onRecords);
      diagnostics.unsubscribe("sluice:job:commit", onCommit);
    }
    expect(await outputResults(output)).toEqual(expectedResults(evs, 2));
  });
});

describe("Kafka job with a sink", () => {
  it("writes results to the sink, flushes it before every commit and closes it on stop", async () => {
    const base = uniqueName("wsink");
    prefixes.push(base);
    const source = `${base}-events`;
    await createTopic(admin, source, 2);
    const evs = events(1_000, 20, 2);
    await produce(kafka, source, [
      ...evs.map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition })),
      ...[0, 1].map((p) => ({
        key: "end",
        value: JSON.stringify({ user: "end", amount: 0, ts: 10_000_000 }),
        partition: p,
      })),
    ]);
    const stateDir = mkdtempSync(path.join(tmpdir(), "wsink-"));
    dirs.push(stateDir);
    const sink = {
      name: "recording",
      status: "open" as "open" | "closing" | "closed",
      rows: [] as WindowResult<unknown>[],
      flushed: 0,
      async write(rs: readonly WindowResult<unknown>[]) {
        this.rows.push(...rs);
      },
      async flush() {
        this.flushed = this.rows.length;
      },
      async close() {
        await this.flush();
        this.status = "closed";
      },
    };
    const atCommit: [number, number][] = [];
    const onCommit = (m: unknown) => {
      if ((m as { applicationId: string }).applicationId === base)
        atCommit.push([sink.rows.length, sink.flushed]);
    };
    diagnostics.subscribe("sluice:job:commit", onCommit);
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      handleSignals: false,
    })
      .window(tumbling({ size: "1m" }))
      .aggregate(count())
      .to(sink);
    const expected = new Set<string>();
    const driver = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } })
        .window(tumbling({ size: "1m" }))
        .aggregate(count()),
      { partitions: 2 },
    );
    for (const { ev, partition } of evs)
      driver.pipe(ev, { key: ev.user, partition, timestamp: ev.ts });
    driver.advanceStreamTime(10_000_000);
    for (const r of driver.results) expected.add(`${r.id}=${r.value}`);
    try {
      await job.start();
      await waitFor(() => sink.rows.length >= expected.size, 60_000);
    } finally {
      await job.stop();
      diagnostics.unsubscribe("sluice:job:commit", onCommit);
    }
    expect(new Set(sink.rows.map((r) => `${r.id}=${r.value}`))).toEqual(expected);
    expect(atCommit.length).toBeGreaterThan(0);
    for (const [written, flushed] of atCommit) expect(flushed).toBe(written);
    expect(sink.status).toBe("closed");
  });
});

describe("Kafka job heartbeats", () => {
  it("keeps its group membership while a sink write blocks longer than the session timeout", async () => {
    const base = uniqueName("wbeat");
    prefixes.push(base);
    const source = `${base}-events`;
    await createTopic(admin, source, 1);
    await produce(kafka, source, [
      { key: "a", value: JSON.stringify({ user: "a", amount: 1, ts: 1_000 }) },
      { key: "a", value: JSON.stringify({ user: "a", amount: 1, ts: 100_000 }) },
    ]);
    const stateDir = mkdtempSync(path.join(tmpdir(), "wbeat-"));
    dirs.push(stateDir);
    const rebalances: unknown[] = [];
    const onRebalance = (m: unknown) => {
      if ((m as { applicationId: string }).applicationId === base) rebalances.push(m);
    };
    diagnostics.subscribe("sluice:job:rebalance", onRebalance);
    const rows: WindowResult<unknown>[] = [];
    const slowSink = {
      name: "slow",
      status: "open" as const,
      async write(rs: readonly WindowResult<unknown>[]) {
        await new Promise((r) => setTimeout(r, 9_000)); // > sessionTimeoutMs
        rows.push(...rs);
      },
      async flush() {},
      async close() {},
    };
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      sessionTimeoutMs: 6_000,
      handleSignals: false,
    })
      .window(tumbling({ size: "1m" }))
      .aggregate(count())
      .to(slowSink);
    try {
      await job.start();
      await waitFor(() => rows.length >= 1, 40_000);
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await job.stop();
      diagnostics.unsubscribe("sluice:job:rebalance", onRebalance);
    }
    expect(rows.map((r) => [r.key, r.windowStart, r.value])).toEqual([["a", 0, 1]]);
    // one assignment at start; an evicted member would have rejoined
    expect(rebalances).toHaveLength(1);
  });
});

describe("Kafka job with keyBy", () => {
  it("re-keys through the repartition topic so each key is counted once per window", async () => {
    const base = uniqueName("wkeyby");
    prefixes.push(base);
    const source = `${base}-events`;
    const output = `${base}-out`;
    await createTopic(admin, source, 3);
    const evs = events(3_000, 30, 3);
    const group = (e: Ev) => `g${Number(e.user.slice(1)) % 4}`;
    await produce(
      kafka,
      source,
      evs.map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition })),
    );
    const stateDir = mkdtempSync(path.join(tmpdir(), "wkeyby-"));
    dirs.push(stateDir);
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      handleSignals: false,
    })
      .keyBy(group)
      // source partitions interleave in the repartition topic: grace covers the disorder
      .window(tumbling({ size: "1m", grace: "10m" }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .to({ topic: output });
    // oracle: exact per-(group, minute) totals of the input
    const expected = new Map<string, { n: number; total: number }>();
    for (const { ev } of evs) {
      const k = `${group(ev)}|${Math.floor(ev.ts / 60_000) * 60_000}`;
      const cur = expected.get(k) ?? { n: 0, total: 0 };
      expected.set(k, { n: cur.n + 1, total: cur.total + ev.amount });
    }
    let got = new Map<string, { n: number; total: number }>();
    let sourceRecords = 0;
    const onRecords = (m: unknown) => {
      const r = m as { applicationId: string; topic: string; count: number };
      if (r.applicationId === base && r.topic === source) sourceRecords += r.count;
    };
    diagnostics.subscribe("sluice:job:records", onRecords);
    await job.start();
    try {
      await waitFor(() => sourceRecords >= evs.length, 60_000);
      // then far-future events for every group key close all windows in every repartition partition
      await produce(
        kafka,
        source,
        [0, 1, 2, 3].map((g) => ({
          key: `u${g}`,
          value: JSON.stringify({ user: `u${g}`, amount: 0, ts: 10_000_000 }),
        })),
      );
      await waitFor(async () => {
        const rows = await readAll(kafka, admin, output);
        got = new Map();
        for (const r of rows) {
          const w = JSON.parse(r.value as string) as WindowResult<{ n: number; total: number }>;
          if (w.windowStart < 10_000_000 - 60_000) got.set(`${w.key}|${w.windowStart}`, w.value);
        }
        return got.size >= expected.size;
      }, 90_000);
    } finally {
      await job.stop();
      diagnostics.unsubscribe("sluice:job:records", onRecords);
    }
    expect(got).toEqual(expected);
    const rows = await readAll(kafka, admin, output);
    // each (key, window) emitted exactly once: the key lives in one partition
    expect(
      rows.filter((r) => !(JSON.parse(r.value as string).windowStart >= 9_000_000)).length,
    ).toBe(expected.size);
  });
});

describe("Kafka job restore groups", () => {
  it("deletes at start the restore groups that killed members left behind, and no other", async () => {
    const base = uniqueName("wrgrp");
    prefixes.push(base);
    const source = `${base}-events`;
    await createTopic(admin, source, 1);
    const stateDir = mkdtempSync(path.join(tmpdir(), "wrgrp-"));
    dirs.push(stateDir);
    const prefix = `${base}.windows.changelog-restore-`;
    const twoHoursAgo = (Date.now() - 2 * 3_600_000).toString(36);
    const stale = `${prefix}${twoHoursAgo}-0a1b2c3d`;
    const earlier = `${prefix}0123456789ab`; // named the earlier way: no creation time
    const fresh = `${prefix}${Date.now().toString(36)}-0a1b2c3d`; // may be a restore in progress
    const other = `${base}-restore-keep`;
    // A group exists once it has offsets, as a killed restore leaves it.
    await Promise.all(
      [stale, earlier, fresh, other].map((groupId) =>
        admin.setOffsets({ groupId, topic: source, partitions: [{ partition: 0, offset: "0" }] }),
      ),
    );
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      handleSignals: false,
    })
      .window(tumbling({ size: "1m" }))
      .aggregate(count())
      .to({ topic: `${base}-out` });
    await job.start();
    await job.stop();
    const left = new Set((await admin.listGroups()).groups.map((g) => g.groupId));
    expect(left.has(stale)).toBe(false);
    expect(left.has(earlier)).toBe(false);
    expect(left.has(fresh)).toBe(true);
    expect(left.has(other)).toBe(true);
    await admin.deleteGroups([fresh, other]).catch(() => {});
  });
});
