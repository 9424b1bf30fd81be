import type { Job, PatternMatch, WindowResult } from "@sluice/windowing";
import { pattern } from "@sluice/windowing";
import type {
  FunnelHourTruth,
  FunnelMatchTruth,
  FunnelOutcome,
  JobSettings,
} from "../generator/ground-truth.js";
import { hourOf } from "../generator/ground-truth.js";
import type { UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "./config.js";
import { utcDay } from "./rows.js";

export type { FunnelOutcome } from "../generator/ground-truth.js";

/** The two funnel outcomes, one job each. */
export const FUNNEL_OUTCOMES: readonly FunnelOutcome[] = ["converted", "abandoned"];

/** Bound and grace of the funnel jobs (part of the deployment's `windows`). */
export type FunnelSettings = Pick<JobSettings, "funnelWithinMs" | "funnelGraceMs">;

const is = (type: UserEvent["type"]) => (e: UserEvent) => e.type === type;

/**
 * The funnel pattern of one outcome: `page_view` → `add_to_cart` →
 * `purchase` (converted), or `page_view` → `add_to_cart` with no `purchase`
 * within the bound (abandoned), per user; the bound counts from the view.
 *
 * @param outcome - which funnel
 * @param s - bound and grace
 * @returns the pattern, for `job.match(...)`
 */
export function funnelPattern(outcome: FunnelOutcome, s: FunnelSettings) {
  const p = pattern<UserEvent>({ within: s.funnelWithinMs, grace: s.funnelGraceMs })
    .step("view", is("page_view"))
    .step("cart", is("add_to_cart"));
  return outcome === "converted"
    ? p.step("purchase", is("purchase"))
    : p.notFollowedBy("purchase", is("purchase"));
}

/**
 * Jobs 4 and 5 (one per outcome): funnel matches per user. The source is
 * keyed by user id already, so there is no repartition.
 *
 * @param job - a job reading UserEvents (from `createJob` or `defineJob`)
 * @param outcome - which funnel
 * @param s - bound and grace (`config.windows`)
 * @returns the job, matching
 */
export function funnelPipeline(
  job: Job<UserEvent>,
  outcome: FunnelOutcome,
  s: FunnelSettings,
): Job<UserEvent, PatternMatch<UserEvent>> {
  return job.match(funnelPattern(outcome, s));
}

/**
 * Application id (consumer group, internal topic prefix) of a funnel job.
 *
 * @param c - the deployment
 * @param outcome - which funnel
 * @returns the id
 */
export function funnelApplicationId(c: PipelineConfig, outcome: FunnelOutcome): string {
  return outcome === "converted" ? c.applications.funnelConverted : c.applications.funnelAbandoned;
}

/** A row of the funnel table: one match, identified by `result_id`. */
export interface FunnelRow extends FunnelMatchTruth {
  result_id: string;
  /** Start of the UTC hour of the page view, epoch ms: the reporting bucket. */
  hour: number;
  day: string;
}

/**
 * Maps a funnel match to its row. The id is the match's own (first event
 * time, occurrence, user): a replay after a crash writes the same id again.
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
  const viewTs = at("view")?.timestamp ?? r.windowStart;
  return {
    result_id: `${outcome}:${r.id}`,
    user_id: r.key,
    outcome,
    view_ts: viewTs,
    cart_ts: at("cart")?.timestamp ?? 0,
    purchase_ts: purchase?.timestamp ?? 0,
    revenue_cents: purchase?.value.revenue_cents ?? 0,
    hour: hourOf(viewTs),
    day: utcDay(viewTs),
  };
}

/**
 * DDL of the funnel table (one row per match) and of its per-hour view. A
 * replay writes the same `result_id` again; ReplacingMergeTree (read with
 * `FINAL`, which the view does) keeps one row per match. Plain column types
 * and no query parameters, for ClickHouse 18.16 and current servers alike.
 *
 * @param c - the deployment (`tables.funnel`, `tables.funnelHourly`)
 * @returns the CREATE statements, table first
 */
export function funnelDdl(c: PipelineConfig): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${c.tables.funnel} (
      result_id String, user_id String, outcome String, view_ts UInt64, cart_ts UInt64,
      purchase_ts UInt64, revenue_cents UInt64, hour UInt64, day Date
    ) ENGINE = ReplacingMergeTree() PARTITION BY day ORDER BY (hour, outcome, result_id)`,
    `CREATE VIEW IF NOT EXISTS ${c.tables.funnelHourly} AS
      SELECT hour, countIf(outcome = 'converted') AS converted,
        countIf(outcome = 'abandoned') AS abandoned,
        sumIf(revenue_cents, outcome = 'converted') AS revenue_cents
      FROM ${c.tables.funnel} FINAL GROUP BY hour`,
  ];
}

/** Conversions, abandonments and converted revenue of one hour, as the view returns them. */
export type FunnelHour = Pick<
  FunnelHourTruth,
  "hour" | "converted" | "abandoned" | "revenue_cents"
>;
