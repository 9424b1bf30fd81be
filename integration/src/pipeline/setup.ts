import { rm } from "node:fs/promises";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { kafkaClientConfig, type PipelineConfig, redisKeys } from "./config.js";
import { funnelDdl } from "./funnel.js";

/** Server version as `[major, minor]`. */
export async function clickhouseVersion(client: ClickHouseClient): Promise<[number, number]> {
  const rs = await client.query({ query: "SELECT version() AS v", format: "JSONEachRow" });
  const [row] = await rs.json<{ v: string }>();
  const [major, minor] = (row?.v ?? "0.0").split(".").map(Number);
  return [major ?? 0, minor ?? 0];
}

/** Whether the server understands table TTL (ClickHouse 19.6 and later). */
export function supportsTtl([major, minor]: [number, number]): boolean {
  return major > 19 || (major === 19 && minor >= 6);
}

/**
 * The DDL of the pipeline's ClickHouse tables. Plain column types only, so the
 * same statements run on the old Debian server (18.16) and on current
 * releases; the hot-tier TTL on raw events is added where the server has TTL.
 *
 * @param c - the deployment
 * @param withTtl - add `TTL event_date + INTERVAL hotTierDays DAY` to `events`
 * @returns CREATE TABLE statements
 */
export function tableDdl(c: PipelineConfig, withTtl: boolean): string[] {
  const ttl = withTtl ? ` TTL event_date + INTERVAL ${c.hotTierDays} DAY` : "";
  return [
    `CREATE TABLE IF NOT EXISTS ${c.tables.events} (
      event_id String, user_id String, type String, page String,
      ts_ms UInt64, revenue_cents UInt64, event_date Date
    ) ENGINE = ReplacingMergeTree() PARTITION BY event_date
    ORDER BY (event_date, user_id, event_id)${ttl}`,
    `CREATE TABLE IF NOT EXISTS ${c.tables.sessions} (
      user_id String, session_start UInt64, session_end UInt64, duration_ms UInt64,
      events UInt32, revenue_cents UInt64, emit_seq UInt32, result_id String, day Date
    ) ENGINE = ReplacingMergeTree(emit_seq) PARTITION BY day ORDER BY (user_id, session_start)`,
    `CREATE TABLE IF NOT EXISTS ${c.tables.minuteCounts} (
      window_start UInt64, type String, count UInt64, emit_seq UInt32, day Date
    ) ENGINE = ReplacingMergeTree(emit_seq) PARTITION BY day ORDER BY (window_start, type)`,
    ...funnelDdl(c),
  ];
}

/** The topics of a deployment: the source and the dead-letter / late topics of each job. */
export function pipelineTopics(c: PipelineConfig): string[] {
  return [c.topic];
}

function kafkaOf(c: PipelineConfig): Kafka {
  return new Kafka({
    ...kafkaClientConfig(c, "sluice-setup"),
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  });
}

/**
 * Creates the deployment's topics (`partitions` partitions each) when
 * missing, with the deployment's TLS/SASL settings. Idempotent.
 *
 * @param c - the deployment
 */
export async function createPipelineTopics(c: PipelineConfig): Promise<void> {
  const admin = kafkaOf(c).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = pipelineTopics(c).filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: c.partitions })),
      });
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates the ClickHouse tables (and the funnel view) when missing; the raw
 * events table gets the hot-tier TTL where the server has TTL. Idempotent.
 *
 * @param c - the deployment
 * @returns whether the raw events table got the hot-tier TTL
 */
export async function createPipelineTables(c: PipelineConfig): Promise<{ ttl: boolean }> {
  const ch = createClient({ url: c.clickhouseUrl, request_timeout: 30_000 });
  try {
    const ttl = supportsTtl(await clickhouseVersion(ch));
    for (const query of tableDdl(c, ttl)) await ch.command({ query });
    return { ttl };
  } finally {
    await ch.close();
  }
}

/**
 * Creates the source topic and the ClickHouse tables when missing
 * ({@link createPipelineTopics}, then {@link createPipelineTables}). The
 * services do the same at start, through `prepareDeployment`, which also
 * checks every service's credentials first. Idempotent.
 *
 * @param c - the deployment
 * @returns whether the raw events table got the hot-tier TTL
 */
export async function setUpPipeline(c: PipelineConfig): Promise<{ ttl: boolean }> {
  await createPipelineTopics(c);
  return createPipelineTables(c);
}

/**
 * Removes everything a deployment wrote: its topics (and the jobs' internal
 * topics, named after their application ids), consumer groups, tables, Redis
 * keys and local state. Used by the demo before a run and by tests after one.
 *
 * @param c - the deployment
 */
export async function tearDownPipeline(c: PipelineConfig): Promise<void> {
  const admin = kafkaOf(c).admin();
  await admin.connect();
  try {
    const apps = Object.values(c.applications);
    const topics = (await admin.listTopics()).filter(
      (t) => t === c.topic || apps.some((a) => t.startsWith(a)),
    );
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => apps.includes(g));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
    // Topic deletion is asynchronous: wait until the broker no longer lists them.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const left = (await admin.listTopics()).filter((t) => topics.includes(t));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await admin.disconnect();
  }
  const ch = createClient({ url: c.clickhouseUrl });
  try {
    for (const t of Object.values(c.tables))
      await ch.command({ query: `DROP TABLE IF EXISTS ${t}` });
  } finally {
    await ch.close();
  }
  const redis = new Redis(c.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", redisKeys.all(c), "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    await redis.quit();
  }
  await rm(c.stateDir, { recursive: true, force: true });
}
