// The pipeline's setup and its checker against the real stack: tables and
// topic are created, rows written the way the sinks write them are read back
// and match the ground truth, a single wrong row is caught, and teardown
// leaves nothing behind.
import { createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import {
  computeGroundTruth,
  type FunnelMatchTruth,
  generateEvents,
  type UserEvent,
} from "../src/generator/index.js";
import { pipelineConfig, redisKeys } from "../src/pipeline/config.js";
import { funnelRow } from "../src/pipeline/funnel.js";
import { readResults, verify } from "../src/pipeline/results.js";
import { minuteCountRow, rawEventRow, sessionRow } from "../src/pipeline/rows.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";

const config = pipelineConfig(uniqueName("it_setup"), { partitions: 4 });
const g = generateEvents({ count: 3_000, seed: 5, partitions: 4 });
const truth = computeGroundTruth(g.records);

/** The funnel table row of a truth match, built from a match result as the funnel sink gets it. */
function funnelRowOf(m: FunnelMatchTruth) {
  const ev = (step: string, timestamp: number, type: UserEvent["type"], revenue?: number) => ({
    step,
    timestamp,
    value: {
      event_id: `${step}${timestamp}`,
      user_id: m.user_id,
      type,
      page: "/",
      ts: timestamp,
      ...(revenue === undefined ? {} : { revenue_cents: revenue }),
    },
  });
  const events = [ev("view", m.view_ts, "page_view"), ev("cart", m.cart_ts, "add_to_cart")];
  if (m.outcome === "converted")
    events.push(ev("purchase", m.purchase_ts, "purchase", m.revenue_cents));
  return funnelRow(
    {
      key: m.user_id,
      windowStart: m.view_ts,
      windowEnd: m.view_ts + 1,
      value: { events },
      final: true,
      emitSeq: 0,
      partition: 0,
      id: `${m.view_ts}:0:${m.user_id}`,
    },
    m.outcome,
  );
}

describe("setUpPipeline / readResults / verify / tearDownPipeline", () => {
  const ch = createClient({ url: config.clickhouseUrl });
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  const kafka = new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();

  beforeAll(async () => {
    await redis.connect();
    await admin.connect();
  });

  afterAll(async () => {
    await tearDownPipeline(config).catch(() => undefined);
    await admin.disconnect();
    await redis.quit();
    await ch.close();
  });

  it("creates the topic with its partitions and the tables, idempotently", async () => {
    const first = await setUpPipeline(config);
    const again = await setUpPipeline(config);
    expect(again).toEqual(first);
    const meta = await admin.fetchTopicMetadata({ topics: [config.topic] });
    expect(meta.topics[0]!.partitions).toHaveLength(4);
    const rs = await ch.query({ query: "SHOW TABLES", format: "JSONEachRow" });
    const tables = (await rs.json<{ name: string }>()).map((r) => r.name);
    for (const t of Object.values(config.tables)) expect(tables).toContain(t);
  });

  it("reads back rows written as the sinks write them and finds them equal to the truth", async () => {
    await ch.insert({
      table: config.tables.sessions,
      format: "JSONEachRow",
      values: truth.sessions.map((s) =>
        sessionRow({
          key: s.user_id,
          value: {
            events: s.events,
            revenue_cents: s.revenue_cents,
            first_ts: s.session_start,
            last_ts: s.session_end,
          },
          emitSeq: 0,
          id: `${s.user_id}@${s.session_start}`,
        }),
      ),
    });
    // A replayed batch with the same identity must not double anything.
    await ch.insert({
      table: config.tables.minuteCounts,
      format: "JSONEachRow",
      values: [...truth.minuteCounts, ...truth.minuteCounts].map((m) =>
        minuteCountRow({ key: m.type, windowStart: m.window_start, value: m.count, emitSeq: 0 }),
      ),
    });
    const raw = g.records.filter((r) => r.event).map((r) => r.event!);
    await ch.insert({
      table: config.tables.events,
      format: "JSONEachRow",
      values: [...raw, ...raw.slice(0, 100)].map(rawEventRow),
    });
    // The funnel sink's rows, a replayed part of them included.
    await ch.insert({
      table: config.tables.funnel,
      format: "JSONEachRow",
      values: [...truth.funnel.matches, ...truth.funnel.matches.slice(0, 20)].map(funnelRowOf),
    });
    const p = redis.pipeline();
    for (const m of truth.minuteCounts) {
      p.hset(redisKeys.minuteCounts(config, m.window_start), m.type, m.count);
    }
    for (const w of truth.pageWindows) {
      p.zadd(redisKeys.topPages(config, w.window_start), w.count, w.page);
    }
    await p.exec();

    const results = await readResults(config);
    const checks = verify(truth, results, {
      dlq: { job: truth.totals.invalid },
      late: { job: truth.totals.late },
    });
    for (const c of checks) expect(c.ok, `${c.name}\n${c.detail ?? ""}`).toBe(true);
    expect(results.sessions.length).toBe(truth.sessions.length);
    expect(truth.funnel.matches.length).toBeGreaterThan(20);
    expect(results.funnelMatches).toHaveLength(truth.funnel.matches.length);
  });

  it("catches one wrong counter, one missing leaderboard entry, an extra funnel match and a wrong DLQ count", async () => {
    const extra = { ...truth.funnel.matches[3]!, view_ts: truth.funnel.matches[3]!.view_ts + 1 };
    await ch.insert({
      table: config.tables.funnel,
      format: "JSONEachRow",
      values: [funnelRowOf(extra)],
    });
    const m = truth.minuteCounts[5]!;
    await redis.hset(redisKeys.minuteCounts(config, m.window_start), m.type, m.count + 1);
    const w = truth.pageWindows[7]!;
    await redis.zrem(redisKeys.topPages(config, w.window_start), w.page);
    const checks = verify(truth, await readResults(config), {
      dlq: { job: truth.totals.invalid - 1 },
      late: { job: truth.totals.late },
    });
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toEqual([
      "Redis live counters = ground truth",
      "Redis top-pages leaderboards = ground truth",
      "ClickHouse funnel matches = ground truth",
      "ClickHouse funnel per hour = ground truth",
      "DLQ of job = invalid records",
    ]);
    const counters = checks.find((c) => c.name.startsWith("Redis live"))!;
    expect(counters.detail).toContain(`"count":${m.count + 1}`);
  });

  it("tears everything down", async () => {
    await tearDownPipeline(config);
    expect(await admin.listTopics()).not.toContain(config.topic);
    const rs = await ch.query({ query: "SHOW TABLES", format: "JSONEachRow" });
    const tables = (await rs.json<{ name: string }>()).map((r) => r.name);
    for (const t of Object.values(config.tables)) expect(tables).not.toContain(t);
    const [, keys] = await redis.scan("0", "MATCH", redisKeys.all(config), "COUNT", 10_000);
    expect(keys).toEqual([]);
  });
});
