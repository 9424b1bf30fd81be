import { count, hopping, type Job, max, min, session, sum, tumbling } from "@sluice/windowing";
import type { UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "../pipeline/config.js";

/**
 * Job 1: per-user sessions (the Kafka key is the user id, so no repartition).
 * The session's start and end are its first and last event times.
 *
 * @param job - a job reading UserEvents (from `createJob` or `defineJob`)
 * @param c - the deployment (gap and grace)
 * @returns the job, windowed and aggregated
 */
export function sessionsPipeline(job: Job<UserEvent>, c: PipelineConfig) {
  return job.window(session({ gap: c.windows.sessionGapMs, grace: c.graceMs })).aggregate({
    events: count<UserEvent>(),
    revenue_cents: sum<UserEvent>((e) => e.revenue_cents ?? 0),
    first_ts: min<UserEvent>((e) => e.ts),
    last_ts: max<UserEvent>((e) => e.ts),
  });
}

/**
 * Job 2: events per type per tumbling minute (re-keyed by type).
 *
 * @param job - a job reading UserEvents
 * @param c - the deployment (window size and grace)
 * @returns the job, windowed and aggregated
 */
export function countsPipeline(job: Job<UserEvent>, c: PipelineConfig) {
  return job
    .keyBy((e) => e.type)
    .window(tumbling({ size: c.windows.tumblingMs, grace: c.repartitionGraceMs }))
    .aggregate(count<UserEvent>());
}

/**
 * Job 3: views per page in hopping windows (re-keyed by page), for the
 * top-pages leaderboards.
 *
 * @param job - a job reading UserEvents
 * @param c - the deployment (window size, advance and grace)
 * @returns the job, windowed and aggregated
 */
export function pagesPipeline(job: Job<UserEvent>, c: PipelineConfig) {
  return job
    .keyBy((e) => e.page)
    .window(
      hopping({
        size: c.windows.hopSizeMs,
        advance: c.windows.hopAdvanceMs,
        grace: c.repartitionGraceMs,
      }),
    )
    .aggregate(count<UserEvent>());
}
