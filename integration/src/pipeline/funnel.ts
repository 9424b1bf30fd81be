import path from "node:path";
import { createClickHouseSink } from "@sluice/sinks";
import {
  createJob,
  type Job,
  type PatternMatch,
  pattern,
  type WindowResult,
} from "@sluice/windowing";
import type { UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "./config.js";
import { utcDay } from "./rows.js";
import { UserEventCodec } from "./user-event-codec.js";

/** The two funnel outcomes: view → cart → purchase, or view → cart and no purchase in time. */
export type FunnelOutcome = "converted" | "abandoned";

/** Settings of the funnel jobs. */
export interface FunnelSettings {
  /** Time from the page view within which the cart (and the purchase) must follow. @defaultValue 30 minutes */
  withinMs: number;
  /** Out-of-order events awaited before matching. @defaultValue 30 seconds */
  graceMs: number;
}

/** Default {@link FunnelSettings}. */
export const defaultFunnelSettings: FunnelSettings = { withinMs: 30 * 60_000, graceMs: 30_000 };

const is = (type: UserEvent["type"]) => (e: UserEvent) => e.type === type;

/**
 * The funnel pattern of one outcome: `page_view` → `add_to_cart` →
 * `purchase` (converted), or `page_view` → `add_to_cart` with no `purchase`
 * within the bound (abandoned), per user.
 *
 * @param outcome - which funnel
 * @param s - bound and grace
 * @returns the pattern, for `job.match(...)`
 */
export function funnelPattern(outcome: FunnelOutcome, s: FunnelSettings = defaultFunnelSettings) {
  const p = pattern<UserEvent>({ within: s.withinMs, grace: s.graceMs })
    .step("view", is("page_view"))
    .step("cart", is("add_to_cart"));
  return outcome === "converted"
    ? p.step("purchase", is("purchase"))
    : p.notFollowedBy("purchase", is("purchase"));
}

/**
 * Job 4 (one per outcome): funnel matches per user.
 *
 * @param job - a job reading UserEvents (from `createJob` or `defineJob`)
 * @param outcome - which funnel
 * @param s - bound and grace
 * @returns the job, matching
 */
export function funnelPipeline(
  job: Job<UserEvent>,
  outcome: FunnelOutcome,
  s: FunnelSettings = defaultFunnelSettings,
): Job<UserEvent, PatternMatch<UserEvent>> {
  return job.match(funnelPattern(outcome, s));
}

/** A row of the funnel table: one match. */
export interface FunnelRow {
  result_id: string;
  user_id: string;
  outcome: FunnelOutcome;
  view_ts: number;
  cart_ts: number;
  /** Purchase time, 0 when abandoned. */
  purchase_ts: number;
  revenue_cents: number;
  /** Start of the UTC hour of the page view, epoch ms: the reporting bucket. */
  hour: number;
  day: string;
}

/**
 * Maps a funnel match to its row.
 *
 * @param r - the match result
 * @param outcome - which funnel produced it
 * @returns the row
 */
export function funnelRow(
  r: WindowResult<PatternMatch<UserEvent>>,
  outcome: FunnelOutcome,
): FunnelRow {
  const at = (step: string) => r.value.events.find((e) => e.step === step);
  const purchase = at("purchase");
  return {
    result_id: `${outcome}:${r.id}`,
    user_id: r.key,
    outcome,
    view_ts: at("view")?.timestamp ?? r.windowStart,
    cart_ts: at("cart")?.timestamp ?? 0,
    purchase_ts: purchase?.timestamp ?? 0,
    revenue_cents: purchase?.value.revenue_cents ?? 0,
    hour: Math.floor(r.windowStart / 3_600_000) * 3_600_000,
    day: utcDay(r.windowStart),
  };
}

/**
 * DDL of the funnel table. A replay writes the same `result_id` again;
 * ReplacingMergeTree (read with `FINAL`) keeps one row per match. Plain
 * column types, for old and current servers alike.
 *
 * @param table - table name
 * @returns the CREATE TABLE statement
 */
export function funnelTableDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
    result_id String, user_id String, outcome String, view_ts UInt64, cart_ts UInt64,
    purchase_ts UInt64, revenue_cents UInt64, hour UInt64, day Date
  ) ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY (hour, outcome, result_id)`;
}

/** Conversion and abandonment of one hour. */
export interface FunnelHour {
  hour: number;
  converted: number;
  abandoned: number;
  revenue_cents: number;
}

/**
 * The per-hour report: conversions, abandonments and converted revenue by
 * the hour of the page view.
 *
 * @param table - the funnel table
 * @returns a SELECT returning {@link FunnelHour} rows (JSONEachRow)
 */
export function funnelPerHourQuery(table: string): string {
  return `SELECT hour, countIf(outcome = 'converted') AS converted,
    countIf(outcome = 'abandoned') AS abandoned,
    sumIf(revenue_cents, outcome = 'converted') AS revenue_cents
    FROM ${table} FINAL GROUP BY hour ORDER BY hour`;
}

/** Running funnel jobs. */
export interface FunnelJobs {
  /** Drains, commits and closes both jobs and their sinks. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts the two funnel jobs (`<namespace>.aggregator-funnel-converted` and
 * `-abandoned`), exactly-once, each writing its matches to the ClickHouse
 * `table` (create it with {@link funnelTableDdl}).
 *
 * @param c - the deployment
 * @param table - the funnel table
 * @param s - bound and grace
 * @returns the running jobs
 */
export async function startFunnelJobs(
  c: PipelineConfig,
  table: string,
  s: FunnelSettings = defaultFunnelSettings,
): Promise<FunnelJobs & { applicationIds: string[] }> {
  const jobs: Job<UserEvent, PatternMatch<UserEvent>>[] = [];
  const applicationIds: string[] = [];
  try {
    for (const outcome of ["converted", "abandoned"] as const) {
      const applicationId = funnelApplicationId(c, outcome);
      const sink = createClickHouseSink<WindowResult<PatternMatch<UserEvent>>>({
        url: c.clickhouseUrl,
        table,
        maxDelayMs: 200,
        toRow: (r) => ({ ...funnelRow(r, outcome) }),
      });
      const job = funnelPipeline(
        createJob<UserEvent>({
          brokers: c.kafkaBrokers,
          applicationId,
          source: { topic: c.topic, schema: UserEventCodec, eventTime: "ts" },
          stateDir: path.join(c.stateDir, applicationId),
          guarantee: "exactly-once",
          handleSignals: false,
        }),
        outcome,
        s,
      ).to(sink);
      jobs.push(job);
      applicationIds.push(applicationId);
      await job.start();
    }
  } catch (err) {
    await Promise.all(jobs.map((j) => j.stop()));
    throw err;
  }
  return {
    applicationIds,
    stop: async () => {
      await Promise.all(jobs.map((j) => j.stop()));
    },
  };
}

/**
 * Application id (consumer group, internal topic prefix) of a funnel job.
 *
 * @param c - the deployment
 * @param outcome - which funnel
 * @returns the id
 */
export function funnelApplicationId(c: PipelineConfig, outcome: FunnelOutcome): string {
  return `${c.applications.sessions.replace(/sessions$/, "funnel")}-${outcome}`;
}
