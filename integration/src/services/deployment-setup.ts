import { Redis } from "ioredis";
import { redactUrl } from "../env.js";
import type { PipelineConfig } from "../pipeline/config.js";
import { createPipelineTables, createPipelineTopics } from "../pipeline/setup.js";

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
 * What the services run at start: creates the source topic and the
 * ClickHouse tables when missing (the same code as `setUpPipeline`:
 * `createPipelineTopics`, `createPipelineTables`, with the deployment's
 * TLS/SASL settings) and checks that Redis answers, so the services start on
 * an empty, secured cluster too; a service that refuses the deployment's
 * credentials fails the start within seconds, naming the service.
 *
 * @param c - the deployment
 * @returns whether the raw events table got the hot-tier TTL
 * @throws DeploymentError naming the service that refused or failed
 */
export async function prepareDeployment(c: PipelineConfig): Promise<{ ttl: boolean }> {
  await named("kafka", `Kafka at ${c.kafkaBrokers.join(",")}`, () => createPipelineTopics(c));
  const { ttl } = await named("clickhouse", `ClickHouse at ${redactUrl(c.clickhouseUrl)}`, () =>
    createPipelineTables(c),
  );
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
