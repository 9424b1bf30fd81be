import { createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { redactUrl } from "../env.js";
import { kafkaClientConfig, type PipelineConfig } from "../pipeline/config.js";
import { clickhouseVersion, pipelineTopics, supportsTtl, tableDdl } from "../pipeline/setup.js";

/** A service refused or failed the deployment's start-up; the message names it, never a password. */
export class DeploymentError extends Error {
  override name = "DeploymentError";
  /** `kafka`, `clickhouse` or `redis`. */
  readonly service: "kafka" | "clickhouse" | "redis";
  constructor(service: DeploymentError["service"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.service = service;
  }
}

async function named<T>(
  service: DeploymentError["service"],
  where: string,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (err) {
    // ioredis puts the failed command on its error; a refused AUTH carries the password.
    const cmd = (err as { command?: { name?: unknown; args?: unknown } })?.command;
    if (/^(auth|hello)$/i.test(String(cmd?.name)) && Array.isArray(cmd?.args)) {
      cmd.args = cmd.args.map(() => "[redacted]");
    }
    throw new DeploymentError(service, `${where}: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
}

/**
 * What the services run at start: checks that Kafka, ClickHouse and Redis
 * accept the deployment's credentials (so wrong ones fail the start within
 * seconds, naming the service), then creates the source topic and the
 * ClickHouse tables when missing (idempotent, like `setUpPipeline`, with the
 * deployment's Kafka TLS/SASL settings), so the services start on an empty,
 * secured cluster too.
 *
 * @param c - the deployment
 * @returns whether the raw events table got the hot-tier TTL
 * @throws DeploymentError naming the service that refused or failed
 */
export async function prepareDeployment(c: PipelineConfig): Promise<{ ttl: boolean }> {
  const admin = new Kafka({
    ...kafkaClientConfig(c, "sluice-setup"),
    logLevel: logLevel.NOTHING,
    retry: { retries: 3 },
  }).admin();
  await named("kafka", `Kafka at ${c.kafkaBrokers.join(",")}`, async () => {
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
  });
  const ttl = await named("clickhouse", `ClickHouse at ${redactUrl(c.clickhouseUrl)}`, async () => {
    const ch = createClient({ url: c.clickhouseUrl, request_timeout: 30_000 });
    try {
      const withTtl = supportsTtl(await clickhouseVersion(ch));
      for (const query of tableDdl(c, withTtl)) await ch.command({ query });
      return withTtl;
    } finally {
      await ch.close();
    }
  });
  await named("redis", `Redis at ${redactUrl(c.redisUrl)}`, async () => {
    const redis = new Redis(c.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      connectTimeout: 10_000,
      retryStrategy: () => null,
    });
    // ioredis reports a refused AUTH on 'error' and rejects connect with a
    // bare "Connection is closed": keep the server's reply.
    let refused: Error | undefined;
    redis.on("error", (err: Error) => {
      refused ??= err;
    });
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      throw refused ?? err;
    } finally {
      redis.disconnect();
    }
  });
  return { ttl };
}
