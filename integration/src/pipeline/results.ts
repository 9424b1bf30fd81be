import { createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import {
  byCountThenPage,
  type FunnelMatchTruth,
  type FunnelOutcome,
  type GroundTruth,
  type MinuteCountTruth,
  type PageWindowTruth,
  type SessionTruth,
} from "../generator/ground-truth.js";
import type { EventType } from "../generator/user-event.js";
import { type PipelineConfig, redisKeys } from "./config.js";
import type { FunnelHour } from "./funnel.js";

/** What the pipeline wrote, read back from ClickHouse and Redis. */
export interface PipelineResults {
  /** `user_sessions FINAL`, sorted by user then start. */
  sessions: SessionTruth[];
  /** `event_counts_1m FINAL`, sorted by window then type. */
  minuteCounts: MinuteCountTruth[];
  /** The Redis live counters, same shape. */
  redisMinuteCounts: MinuteCountTruth[];
  /** The Redis leaderboards: every page of every hopping window. */
  pageWindows: PageWindowTruth[];
  /** Raw events rows (after dedup by `FINAL`). */
  rawEvents: number;
  /** `funnel_matches FINAL`: every funnel match, sorted by user, view time, then outcome. */
  funnelMatches: FunnelMatchTruth[];
  /** The `funnel_hourly` view: conversions and abandonments per hour, in order. */
  funnelHours: FunnelHour[];
}

const num = (v: unknown) => Number(v);

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

/**
 * Reads the pipeline's outputs back.
 *
 * @param c - the deployment
 * @returns ClickHouse tables and Redis keys as plain rows
 */
export async function readResults(c: PipelineConfig): Promise<PipelineResults> {
  const ch = createClient({ url: c.clickhouseUrl, request_timeout: 60_000 });
  const query = async <T>(sql: string): Promise<T[]> => {
    const rs = await ch.query({ query: sql, format: "JSONEachRow" });
    return rs.json<T>();
  };
  let sessions: SessionTruth[];
  let minuteCounts: MinuteCountTruth[];
  let rawEvents: number;
  let funnelMatches: FunnelMatchTruth[];
  let funnelHours: FunnelHour[];
  try {
    sessions = (
      await query<Record<string, unknown>>(
        `SELECT user_id, session_start, session_end, duration_ms, events, revenue_cents
         FROM ${c.tables.sessions} FINAL ORDER BY user_id, session_start`,
      )
    ).map((r) => ({
      user_id: String(r.user_id),
      session_start: num(r.session_start),
      session_end: num(r.session_end),
      duration_ms: num(r.duration_ms),
      events: num(r.events),
      revenue_cents: num(r.revenue_cents),
    }));
    minuteCounts = (
      await query<Record<string, unknown>>(
        `SELECT window_start, type, count FROM ${c.tables.minuteCounts} FINAL
         ORDER BY window_start, type`,
      )
    ).map((r) => ({
      window_start: num(r.window_start),
      type: String(r.type) as EventType,
      count: num(r.count),
    }));
    const [raw] = await query<{ n: string }>(`SELECT count() AS n FROM ${c.tables.events} FINAL`);
    rawEvents = num(raw?.n ?? 0);
    funnelMatches = (
      await query<Record<string, unknown>>(
        `SELECT user_id, outcome, view_ts, cart_ts, purchase_ts, revenue_cents
         FROM ${c.tables.funnel} FINAL ORDER BY user_id, view_ts, outcome`,
      )
    ).map((r) => ({
      user_id: String(r.user_id),
      outcome: String(r.outcome) as FunnelOutcome,
      view_ts: num(r.view_ts),
      cart_ts: num(r.cart_ts),
      purchase_ts: num(r.purchase_ts),
      revenue_cents: num(r.revenue_cents),
    }));
    funnelHours = (
      await query<Record<string, unknown>>(
        `SELECT hour, converted, abandoned, revenue_cents FROM ${c.tables.funnelHourly} ORDER BY hour`,
      )
    ).map((r) => ({
      hour: num(r.hour),
      converted: num(r.converted),
      abandoned: num(r.abandoned),
      revenue_cents: num(r.revenue_cents),
    }));
  } finally {
    await ch.close();
  }

  const redis = new Redis(c.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  const redisMinuteCounts: MinuteCountTruth[] = [];
  const pageWindows: PageWindowTruth[] = [];
  try {
    const countPrefix = redisKeys.minuteCounts(c, 0).slice(0, -1);
    for (const key of await scanKeys(redis, `${countPrefix}*`)) {
      const windowStart = Number(key.slice(countPrefix.length));
      for (const [type, count] of Object.entries(await redis.hgetall(key))) {
        redisMinuteCounts.push({
          window_start: windowStart,
          type: type as EventType,
          count: Number(count),
        });
      }
    }
    const topPrefix = redisKeys.topPages(c, 0).slice(0, -1);
    for (const key of await scanKeys(redis, `${topPrefix}*`)) {
      const windowStart = Number(key.slice(topPrefix.length));
      const flat = await redis.zrange(key, 0, -1, "WITHSCORES");
      for (let i = 0; i < flat.length; i += 2) {
        pageWindows.push({
          window_start: windowStart,
          window_end: windowStart + c.windows.hopSizeMs,
          page: flat[i]!,
          count: Number(flat[i + 1]),
        });
      }
    }
  } finally {
    await redis.quit();
  }
  redisMinuteCounts.sort(
    (a, b) => a.window_start - b.window_start || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0),
  );
  pageWindows.sort((a, b) => a.window_start - b.window_start || byCountThenPage(a, b));
  return {
    sessions,
    minuteCounts,
    redisMinuteCounts,
    pageWindows,
    rawEvents,
    funnelMatches,
    funnelHours,
  };
}

/** One invariant checked against the ground truth. */
export interface Check {
  name: string;
  expected: number | string;
  actual: number | string;
  ok: boolean;
  /** The first differences, when not ok. */
  detail?: string;
}

function diffRows<T>(name: string, expected: readonly T[], actual: readonly T[]): Check {
  const key = (r: T) => JSON.stringify(r);
  const want = new Set(expected.map(key));
  const have = new Set(actual.map(key));
  const missing = [...want].filter((k) => !have.has(k));
  const extra = [...have].filter((k) => !want.has(k));
  const ok = missing.length === 0 && extra.length === 0 && expected.length === actual.length;
  const detail = ok
    ? undefined
    : [
        ...missing.slice(0, 3).map((k) => `missing ${k}`),
        ...extra.slice(0, 3).map((k) => `unexpected ${k}`),
        `${missing.length} missing, ${extra.length} unexpected`,
      ].join("\n");
  return { name, expected: expected.length, actual: actual.length, ok, detail };
}

/** Counters the aggregator observed (from its diagnostics channels and DLQ topic). */
export interface PipelineCounters {
  /** Records in each job's dead-letter topic, by application id. */
  dlq: Record<string, number>;
  /** Records each job dropped as late, by application id. */
  late: Record<string, number>;
}

/**
 * Compares the pipeline's outputs with the generator's ground truth, row by
 * row: every session, every per-minute count (ClickHouse and Redis), every
 * page of every hopping window, every funnel match and every hour of the
 * funnel view, raw event count, DLQ and late counts (a funnel job's late
 * count against the funnel's own lateness rule).
 *
 * @param truth - from `computeGroundTruth`
 * @param results - from {@link readResults}
 * @param counters - DLQ and late counts per job
 * @returns one {@link Check} per invariant
 */
export function verify(
  truth: GroundTruth,
  results: PipelineResults,
  counters?: PipelineCounters,
): Check[] {
  const checks: Check[] = [
    diffRows("ClickHouse user_sessions = ground truth", truth.sessions, results.sessions),
    diffRows(
      "ClickHouse per-minute counts = ground truth",
      truth.minuteCounts,
      results.minuteCounts,
    ),
    diffRows("Redis live counters = ground truth", truth.minuteCounts, results.redisMinuteCounts),
    diffRows("Redis top-pages leaderboards = ground truth", truth.pageWindows, results.pageWindows),
    diffRows(
      "ClickHouse funnel matches = ground truth",
      truth.funnel.matches,
      results.funnelMatches,
    ),
    diffRows(
      "ClickHouse funnel per hour = ground truth",
      truth.funnel.hours
        .filter((h) => h.converted + h.abandoned > 0)
        .map(({ hour, converted, abandoned, revenue_cents }) => ({
          hour,
          converted,
          abandoned,
          revenue_cents,
        })),
      results.funnelHours,
    ),
    {
      name: "ClickHouse raw events = valid + late events",
      expected: truth.totals.valid + truth.totals.late,
      actual: results.rawEvents,
      ok: truth.totals.valid + truth.totals.late === results.rawEvents,
    },
  ];
  if (counters) {
    for (const [app, n] of Object.entries(counters.dlq)) {
      checks.push({
        name: `DLQ of ${app} = invalid records`,
        expected: truth.totals.invalid,
        actual: n,
        ok: n === truth.totals.invalid,
      });
    }
    for (const [app, n] of Object.entries(counters.late)) {
      // The funnel jobs have their own grace, and the truth its own count for it.
      const expected = /funnel-(converted|abandoned)$/.test(app)
        ? truth.funnel.late
        : truth.totals.late;
      checks.push({
        name: `late records dropped by ${app} = late records sent`,
        expected,
        actual: n,
        ok: n === expected,
      });
    }
  }
  return checks;
}
