import path from "node:path";
import type { KafkaConfig } from "kafkajs";
import { env, type KafkaSecurity } from "../env.js";
import { defaultJobSettings, type JobSettings } from "../generator/ground-truth.js";

/**
 * Names and addresses of one pipeline deployment. The demo uses the plain
 * names (`events`, `user_sessions`, ...); tests pass a unique `namespace` so
 * runs never share a topic, table, key, consumer group or state directory.
 */
export interface PipelineConfig {
  namespace: string;
  kafkaBrokers: string[];
  /** TLS and SASL of every Kafka client (kafkajs `ssl` / `sasl`); empty for plaintext. */
  kafkaSecurity: KafkaSecurity;
  /** ClickHouse HTTP(S) URL; may carry `user:password@` (never log it: see `redactUrl`). */
  clickhouseUrl: string;
  /** Redis URL (`rediss://` for TLS); may carry `user:password@`. */
  redisUrl: string;
  /** Source topic. */
  topic: string;
  partitions: number;
  /** Consumer group / application id of each job. */
  applications: {
    sessions: string;
    counts: string;
    pages: string;
    raw: string;
    funnelConverted: string;
    funnelAbandoned: string;
  };
  /**
   * ClickHouse tables (`funnelHourly` is a view over `funnel`: conversions,
   * abandonments and converted revenue per hour).
   */
  tables: {
    events: string;
    sessions: string;
    minuteCounts: string;
    funnel: string;
    funnelHourly: string;
  };
  /** Redis key prefix; keys are listed in {@link redisKeys}. */
  redisPrefix: string;
  /** Root of the aggregator's local state. */
  stateDir: string;
  /** Window settings of the windowed jobs, bound and grace of the funnel jobs. */
  windows: JobSettings;
  /** Grace period of the session windows, ms: out-of-order events within it still count. */
  graceMs: number;
  /**
   * Grace period of the re-keyed jobs (per-type counts, top pages), ms. Their
   * records pass through a repartition topic that interleaves the source
   * partitions as they are consumed, so their event times are less ordered
   * than the source's: a replay of hours of events in seconds, with a hot
   * user making one partition much longer than the others, puts the light
   * partitions hours of event time ahead in the repartition topic. The grace
   * covers that (measured: 2 h was not enough for 300,000 events, a 4.5 h
   * span). Keep it below the generator's `lateByMs` (a day) so late events
   * stay late. @defaultValue 12 hours
   */
  repartitionGraceMs: number;
  /** Top pages kept per hopping window in Redis and announced on pub/sub. */
  topN: number;
  /** Days raw events stay in the hot tier (ClickHouse TTL, where supported). */
  hotTierDays: number;
}

/**
 * Builds a {@link PipelineConfig}; addresses come from the `SLUICE_*`
 * environment variables (see `env.ts`).
 *
 * @param namespace - empty for the reference names, or a unique prefix for a test run
 * @param overrides - any field to replace
 * @returns the configuration
 */
export function pipelineConfig(
  namespace = "",
  overrides: Partial<PipelineConfig> = {},
): PipelineConfig {
  const n = (name: string, sep = "_") => (namespace ? `${namespace}${sep}${name}` : name);
  const stateRoot = process.env.SLUICE_STATE_DIR ?? path.resolve(".sluice", "state");
  return {
    namespace,
    kafkaBrokers: env.kafkaBrokers,
    kafkaSecurity: env.kafka,
    clickhouseUrl: env.clickhouseUrl,
    redisUrl: env.redisUrl,
    topic: process.env.SLUICE_TOPIC ?? n("events", "."),
    partitions: Number(process.env.SLUICE_PARTITIONS ?? 12),
    applications: {
      sessions: n("aggregator-sessions", "."),
      counts: n("aggregator-counts", "."),
      pages: n("aggregator-pages", "."),
      raw: n("aggregator-raw", "."),
      funnelConverted: n("aggregator-funnel-converted", "."),
      funnelAbandoned: n("aggregator-funnel-abandoned", "."),
    },
    tables: {
      events: n("events"),
      sessions: n("user_sessions"),
      minuteCounts: n("event_counts_1m"),
      funnel: n("funnel_matches"),
      funnelHourly: n("funnel_hourly"),
    },
    redisPrefix: `sluice:${namespace || "demo"}:`,
    stateDir: path.join(stateRoot, namespace || "demo"),
    windows: defaultJobSettings,
    graceMs: 30_000,
    repartitionGraceMs: 12 * 3_600_000,
    topN: 10,
    hotTierDays: 30,
    ...overrides,
  };
}

/**
 * The kafkajs client settings of a deployment: its brokers with its TLS and
 * SASL settings. Every Kafka client of the services is built from this.
 *
 * @param c - the deployment
 * @param clientId - the client id Kafka sees
 * @returns a kafkajs `KafkaConfig` (add `logLevel`, `retry` as needed)
 */
export function kafkaClientConfig(c: PipelineConfig, clientId: string): KafkaConfig {
  const { ssl, sasl } = c.kafkaSecurity ?? {};
  return {
    clientId,
    brokers: c.kafkaBrokers,
    ...(ssl === undefined ? {} : { ssl }),
    ...(sasl === undefined ? {} : { sasl }),
  };
}

/** The Redis keys the pipeline writes. */
export const redisKeys = {
  /** Hash: event type → count, for the tumbling minute starting at `windowStart`. */
  minuteCounts: (c: PipelineConfig, windowStart: number) => `${c.redisPrefix}counts:${windowStart}`,
  /** Sorted set: page → views, for the hopping window starting at `windowStart`. */
  topPages: (c: PipelineConfig, windowStart: number) => `${c.redisPrefix}top-pages:${windowStart}`,
  /** Pub/sub channel announcing each closed hopping window's top pages. */
  topPagesChannel: (c: PipelineConfig) => `${c.redisPrefix}top-pages`,
  /** Pattern matching every key of the deployment. */
  all: (c: PipelineConfig) => `${c.redisPrefix}*`,
};
