import { subscribe, unsubscribe } from "node:diagnostics_channel";
import path from "node:path";
import { registerCompressionCodecs } from "@sluice/producer";
import type { Duration } from "@sluice/schema";
import { createClickHouseSink, type Sink } from "@sluice/sinks";
import { createJob, type Job, type PatternMatch, type WindowResult } from "@sluice/windowing";
import { Kafka, logLevel } from "kafkajs";
import type { UserEvent } from "../generator/user-event.js";
import { kafkaClientConfig, type PipelineConfig } from "../pipeline/config.js";
import {
  FUNNEL_OUTCOMES,
  funnelApplicationId,
  funnelPipeline,
  funnelRow,
} from "../pipeline/funnel.js";
import { minuteCountRow, rawEventRow, type SessionValue, sessionRow } from "../pipeline/rows.js";
import { UserEventCodec } from "../pipeline/user-event-codec.js";
import { countsPipeline, pagesPipeline, sessionsPipeline } from "./jobs.js";
import { type RawEventsConsumer, startRawEventsConsumer } from "./raw-events.js";
import { createRedisOutputs } from "./redis-outputs.js";

/** Counts the aggregator observed on its diagnostics channels, per application id. */
export interface AggregatorCounters {
  late: Record<string, number>;
  dlq: Record<string, number>;
  records: Record<string, number>;
}

/** A running aggregator. */
export interface Aggregator {
  readonly counters: AggregatorCounters;
  /** Drains, commits and closes the jobs, the raw consumer and every sink. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The aggregator service: five exactly-once jobs and the raw-events
 * consumer, all reading the source topic, writing to ClickHouse and Redis.
 *
 * - sessions (per user, 30-minute gap) → ClickHouse `user_sessions`
 * - per-type tumbling minute counts → ClickHouse `event_counts_1m` and Redis hashes
 * - per-page hopping 5m/1m counts → Redis sorted sets (leaderboards) and pub/sub
 * - funnel, one job per outcome (per user: view → cart → purchase within
 *   30 minutes, or view → cart and no purchase) → ClickHouse `funnel_matches`,
 *   read per hour through the `funnel_hourly` view
 * - raw events → ClickHouse `events`
 *
 * @param opts - the deployment
 * @returns the running aggregator
 */
export async function startAggregator(opts: AggregatorOptions): Promise<Aggregator> {
  const attempts = opts.startAttempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      // Kafka may not serve freshly (re)created internal topics for a moment.
      const code = (err as { code?: string })?.code;
      if (attempt >= attempts || code !== "WINDOWING_KAFKA_FAILED" || refusedCredentials(err))
        throw err;
      opts.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/** Kafka refused the credentials: no retry can help. */
function refusedCredentials(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.name === "KafkaJSSASLAuthenticationError") return true;
  }
  return false;
}

/** Options of {@link startAggregator}. */
export interface AggregatorOptions {
  config: PipelineConfig;
  /** kafkajs log level of the raw-events consumer. @defaultValue logLevel.ERROR */
  kafkaLogLevel?: logLevel;
  /** kafkajs log level of the windowing jobs' clients. @defaultValue logLevel.NOTHING */
  jobKafkaLogLevel?: logLevel;
  /** Start attempts when Kafka is not ready for the jobs' internal topics yet. @defaultValue 5 */
  startAttempts?: number;
  /** Called before a start is retried. */
  onRetry?: (err: unknown, attempt: number) => void;
  /**
   * Called once when a job stopped by itself more than `maxJobRestarts` times
   * (the runtime stops a job on an error rather than run ahead of what it
   * committed). The aggregator is then incomplete: stop it.
   */
  onJobFailure?: (applicationId: string, reason: string) => void;
  /** Called when a job that stopped by itself is restarted. */
  onJobRestart?: (applicationId: string, reason: string, restart: number) => void;
  /** Restarts per job before `onJobFailure`. @defaultValue 10 */
  maxJobRestarts?: number;
  /**
   * How long the ClickHouse sinks retry an insert answered "unknown table"
   * (a server restarting) before they fail. @defaultValue the sink's, 1 minute
   */
  missingTableRetryMs?: Duration;
}

interface RunningJob {
  job: Pick<Job<unknown>, "status" | "stop" | "start">;
  sinks: Array<Sink<never>>;
}

async function startOnce(opts: AggregatorOptions): Promise<Aggregator> {
  // The producer compresses with lz4 by default; kafkajs consumers need the codec too.
  registerCompressionCodecs();
  const c = opts.config;
  const counters: AggregatorCounters = { late: {}, dlq: {}, records: {} };
  const onLate = (m: unknown) => {
    const { applicationId, count } = m as { applicationId: string; count: number };
    counters.late[applicationId] = (counters.late[applicationId] ?? 0) + count;
  };
  const onDlq = (m: unknown) => {
    const { applicationId, count } = m as { applicationId: string; count: number };
    counters.dlq[applicationId] = (counters.dlq[applicationId] ?? 0) + count;
  };
  const onRecords = (m: unknown) => {
    const { applicationId, count } = m as { applicationId: string; count: number };
    counters.records[applicationId] = (counters.records[applicationId] ?? 0) + count;
  };
  subscribe("sluice:job:late", onLate);
  subscribe("sluice:job:dlq", onDlq);
  subscribe("sluice:job:records", onRecords);

  const kafka = new Kafka({
    ...kafkaClientConfig(c, "sluice-aggregator"),
    logLevel: opts.kafkaLogLevel ?? logLevel.ERROR,
  });
  const ch = (table: string) => ({
    url: c.clickhouseUrl,
    table,
    maxDelayMs: 200,
    ...(opts.missingTableRetryMs === undefined
      ? {}
      : { missingTableRetryMs: opts.missingTableRetryMs }),
  });
  const rawEventsSink = () =>
    createClickHouseSink<UserEvent>({
      ...ch(c.tables.events),
      toRow: (e) => ({ ...rawEventRow(e) }),
      identity: (e) => e.event_id,
    });
  let rawSink = rawEventsSink();
  const redis = createRedisOutputs(c);
  const source = (applicationId: string): Job<UserEvent> =>
    createJob<UserEvent>({
      // The deployment's TLS/SASL settings, the job's own client id.
      kafka: new Kafka({
        ...kafkaClientConfig(c, applicationId),
        logLevel: opts.jobKafkaLogLevel ?? logLevel.NOTHING,
      }),
      applicationId,
      source: { topic: c.topic, schema: UserEventCodec, eventTime: "ts" },
      stateDir: path.join(c.stateDir, applicationId),
      guarantee: "exactly-once",
      handleSignals: false,
    });
  // Each job with its own sinks, built fresh when the job is (re)started:
  // a stopped job closes the sinks it was given.
  const builders: Record<string, () => RunningJob> = {
    [c.applications.sessions]: () => {
      const sink = createClickHouseSink<WindowResult<SessionValue>>({
        ...ch(c.tables.sessions),
        toRow: (r) => ({ ...sessionRow(r) }),
      });
      return { job: sessionsPipeline(source(c.applications.sessions), c).to(sink), sinks: [sink] };
    },
    [c.applications.counts]: () => {
      const sink = createClickHouseSink<WindowResult<number>>({
        ...ch(c.tables.minuteCounts),
        toRow: (r) => ({ ...minuteCountRow(r) }),
      });
      const live = redis.minuteCounts();
      return {
        job: countsPipeline(source(c.applications.counts), c).to(sink).to(live),
        sinks: [sink, live],
      };
    },
    [c.applications.pages]: () => {
      const top = redis.topPages();
      return { job: pagesPipeline(source(c.applications.pages), c).to(top), sinks: [top] };
    },
  };
  for (const outcome of FUNNEL_OUTCOMES) {
    const app = funnelApplicationId(c, outcome);
    builders[app] = () => {
      const sink = createClickHouseSink<WindowResult<PatternMatch<UserEvent>>>({
        ...ch(c.tables.funnel),
        toRow: (r) => ({ ...funnelRow(r, outcome) }),
      });
      return { job: funnelPipeline(source(app), outcome, c.windows).to(sink), sinks: [sink] };
    };
  }
  const running = new Map<string, RunningJob>();
  const restarts: Record<string, number> = {};
  let raw: RawEventsConsumer | undefined;
  let stopping: Promise<void> | undefined;
  // A failing job stops itself and says why in a process warning.
  const warnings: string[] = [];
  const onWarning = (w: Error) => {
    warnings.push(w.message);
  };
  process.on("warning", onWarning);
  let watchdog: NodeJS.Timeout | undefined;
  const closeQuietly = async (r: RunningJob) => {
    await r.job.stop().catch(() => undefined);
    await Promise.all(r.sinks.map((s) => s.close().catch(() => undefined)));
  };
  const startJob = async (app: string) => {
    const r = builders[app]!();
    try {
      await r.job.start();
    } catch (err) {
      await closeQuietly(r);
      throw err;
    }
    running.set(app, r);
  };
  const stop = () => {
    stopping ??= (async () => {
      const errors: unknown[] = [];
      const settle = async (p: Promise<unknown>) => {
        try {
          await p;
        } catch (err) {
          errors.push(err);
        }
      };
      clearInterval(watchdog);
      while (supervising) await new Promise((r) => setTimeout(r, 50));
      await Promise.all([
        ...[...running.values()].map((r) => settle(r.job.stop())),
        settle(raw?.stop() ?? Promise.resolve()),
      ]);
      const sinks: Array<Sink<never>> = [rawSink, ...[...running.values()].flatMap((r) => r.sinks)];
      await Promise.all(sinks.map((s) => settle(s.close())));
      process.off("warning", onWarning);
      unsubscribe("sluice:job:late", onLate);
      unsubscribe("sluice:job:dlq", onDlq);
      unsubscribe("sluice:job:records", onRecords);
      if (errors.length > 0)
        throw new AggregateError(errors, "the aggregator did not stop cleanly");
    })();
    return stopping;
  };
  // Supervision: a job that stopped by itself is restarted with fresh sinks;
  // exactly-once makes that safe (it resumes from its last commit).
  let supervising = false;
  const supervise = async () => {
    if (stopping || supervising) return;
    supervising = true;
    try {
      // The raw-events copy likewise: a failed sink rejects every later
      // write, so the consumer starts over from its last commit with a new one.
      if (raw?.failure && !stopping) {
        const app = c.applications.raw;
        const reason = raw.failure.message;
        restarts[app] = (restarts[app] ?? 0) + 1;
        if (restarts[app]! > maxRestarts) {
          opts.onJobFailure?.(app, reason);
          return;
        }
        opts.onJobRestart?.(app, reason, restarts[app]!);
        await raw.stop().catch(() => undefined);
        await rawSink.close().catch(() => undefined);
        rawSink = rawEventsSink();
        try {
          raw = await startRawEventsConsumer({ config: c, kafka, sink: rawSink });
        } catch (err) {
          // Try again on the next tick.
          const failure = new Error(`restart failed: ${(err as Error).message}`);
          raw = { failure, stop: async () => {} };
        }
      }
      for (const [app, r] of running) {
        if (stopping || r.job.status !== "closed") continue;
        const reason = warnings.findLast((w) => w.includes(app)) ?? "stopped unexpectedly";
        restarts[app] = (restarts[app] ?? 0) + 1;
        if (restarts[app]! > maxRestarts) {
          opts.onJobFailure?.(app, reason);
          return;
        }
        opts.onJobRestart?.(app, reason, restarts[app]!);
        await closeQuietly(r);
        running.delete(app);
        try {
          await startJob(app);
        } catch (err) {
          // Try again on the next tick.
          running.set(app, { job: { status: "closed", stop: async () => {} } as never, sinks: [] });
          warnings.push(`${app}: restart failed: ${(err as Error).message}`);
        }
      }
    } finally {
      supervising = false;
    }
  };
  const maxRestarts = opts.maxJobRestarts ?? 10;
  try {
    for (const app of Object.keys(builders)) await startJob(app);
    raw = await startRawEventsConsumer({ config: c, kafka, sink: rawSink });
    watchdog = setInterval(() => void supervise(), 1000);
    watchdog.unref();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { counters, stop };
}
