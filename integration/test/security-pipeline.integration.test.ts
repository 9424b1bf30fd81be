// The whole reference pipeline against secured services: a private Kafka
// broker that requires SCRAM-SHA-512 over TLS, ClickHouse as the password
// user, Redis as the ACL user — configured only through the SLUICE_*
// environment variables of the producer and aggregator processes. The results
// must equal the ground truth; with a wrong password for any one service,
// each entry point fails fast with a coded error naming the service; and no
// log line, error or metric of the run contains any password, in clear,
// URL-encoded or base64.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { createClient } from "@clickhouse/client";
import { createProducer, ProducerError } from "@sluice/producer";
import { createClickHouseSink, SinkError } from "@sluice/sinks";
import { WindowingError } from "@sluice/windowing";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localCredentials, type PrivateKafka, startPrivateKafka } from "../../scripts/stack.mjs";
import { readEnv, uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents } from "../src/generator/index.js";
import {
  kafkaClientConfig,
  type PipelineConfig,
  pipelineConfig,
  redisKeys,
} from "../src/pipeline/config.js";
import { finishStream } from "../src/pipeline/finish.js";
import { readResults, verify } from "../src/pipeline/results.js";
import { rawEventRow } from "../src/pipeline/rows.js";
import { UserEventCodec } from "../src/pipeline/user-event-codec.js";
import { startAggregator } from "../src/services/aggregator-service.js";
import { createRedisOutputs } from "../src/services/redis-outputs.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const creds = localCredentials();
const PARTITIONS = 4;
const namespace = uniqueName("it_secure");
// Below the ephemeral range (32768+), clear of the other private brokers.
const port = 32_000 + Math.floor(Math.random() * 150) * 4;
const baseClickhouseUrl = process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const baseRedisUrl = process.env.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379";
const stream = generateEvents({
  count: 8_000,
  seed: 4242,
  startMs: Date.UTC(2026, 10, 25, 2),
  partitions: PARTITIONS,
});

let broker: PrivateKafka;
let dir: string;
const children: ChildProcess[] = [];

/** The environment of a secured deployment (what docker-compose / k8s set). */
function secureVars(override: Record<string, string> = {}): Record<string, string> {
  return {
    SLUICE_NAMESPACE: namespace,
    SLUICE_PARTITIONS: String(PARTITIONS),
    SLUICE_KAFKA_BROKERS: broker.brokers.join(","),
    SLUICE_KAFKA_TLS_CA_FILE: broker.caFile!,
    SLUICE_KAFKA_SASL_MECHANISM: "scram-sha-512",
    SLUICE_KAFKA_SASL_USERNAME: creds.kafka.username,
    SLUICE_KAFKA_SASL_PASSWORD: creds.kafka.password,
    SLUICE_CLICKHOUSE_URL: baseClickhouseUrl,
    SLUICE_CLICKHOUSE_USERNAME: creds.clickhouse.username,
    SLUICE_CLICKHOUSE_PASSWORD: creds.clickhouse.password,
    SLUICE_REDIS_URL: baseRedisUrl,
    SLUICE_REDIS_USERNAME: creds.redis.username,
    SLUICE_REDIS_PASSWORD: creds.redis.password,
    SLUICE_METRICS_PORT: "0",
    SLUICE_STATE_DIR: path.join(dir, "state"),
    ...override,
  };
}

function configOf(vars: Record<string, string>): PipelineConfig {
  const e = readEnv(vars);
  return pipelineConfig(namespace, {
    partitions: PARTITIONS,
    kafkaBrokers: e.kafkaBrokers,
    kafkaSecurity: e.kafka,
    clickhouseUrl: e.clickhouseUrl,
    redisUrl: e.redisUrl,
    stateDir: path.join(dir, "state-in-process", namespace),
  });
}

/** Every way a password could leak into text: clear, URL-encoded, base64 (alone or as HTTP Basic `user:password`). */
function leakForms(username: string, password: string): string[] {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const b64url = (s: string) => Buffer.from(s).toString("base64url");
  return [
    password,
    encodeURIComponent(password),
    b64(password),
    b64url(password),
    b64(`${username}:${password}`),
    b64url(`${username}:${password}`),
  ];
}

const realSecrets = () => [
  ...leakForms(creds.kafka.username, creds.kafka.password),
  ...leakForms(creds.clickhouse.username, creds.clickhouse.password),
  ...leakForms(creds.redis.username, creds.redis.password),
];

function expectNoSecret(text: string, extra: string[] = []) {
  for (const s of [...realSecrets(), ...extra]) {
    if (text.includes(s)) {
      const at = text.indexOf(s);
      throw new Error(
        `a secret leaked: …${text.slice(Math.max(0, at - 80), at)}<SECRET>${text.slice(at + s.length, at + s.length + 40)}…`,
      );
    }
  }
}

/** A service process: every stdout/stderr line kept, `@@sluice` events awaited by name. */
interface Service {
  child: ChildProcess;
  output: string[];
  next(event: string, timeoutMs: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startService(script: string, vars: Record<string, string>, args: string[] = []): Service {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(root, "integration/src/bin", script), ...args],
    {
      cwd: root,
      env: {
        ...process.env,
        ...vars,
        TSX_TSCONFIG_PATH: path.join(root, "integration/tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  const output: string[] = [];
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    output.push(line);
    if (line.startsWith("@@sluice ")) {
      events.push(JSON.parse(line.slice("@@sluice ".length)));
      for (const w of waiters.splice(0)) w();
    }
  });
  createInterface({ input: child.stderr! }).on("line", (line) => output.push(line));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      resolve(code);
      for (const w of waiters.splice(0)) w();
    }),
  );
  return {
    child,
    output,
    exited,
    next(event, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find((e) => e.event === event);
          if (found) return resolve(found);
          if (child.exitCode !== null || Date.now() > deadline) {
            return reject(
              new Error(`${script}: no "${event}" event:\n${output.slice(-30).join("\n")}`),
            );
          }
          waiters.push(check);
        };
        setTimeout(check, Math.max(0, timeoutMs)).unref();
        check();
      });
    },
  };
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sluice-secure-pipeline-"));
  broker = await startPrivateKafka({ port, dir: path.join(dir, "kafka"), secure: true });
}, 180_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await broker?.stop({ signal: "SIGKILL" }).catch(() => undefined);
  // Kafka went with the private broker; the tables and keys live on the shared stack.
  const c = pipelineConfig(namespace);
  const ch = createClient({ url: baseClickhouseUrl });
  for (const t of Object.values(c.tables))
    await ch.command({ query: `DROP TABLE IF EXISTS ${t}` }).catch(() => undefined);
  await ch.close();
  const redis = new Redis(baseRedisUrl);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", redisKeys.all(c), "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
}, 120_000);

describe("the reference pipeline against secured Kafka, ClickHouse and Redis", () => {
  it("produces, aggregates and sinks results equal to the ground truth; no log line or metric holds a password", async () => {
    // kafkajs logs at debug level too (SASL handshakes included): none may leak.
    const vars = secureVars({ SLUICE_KAFKA_LOG_LEVEL: "debug" });
    const config = configOf(vars);
    expect(config.kafkaSecurity.sasl?.mechanism).toBe("scram-sha-512");
    const truth = computeGroundTruth(stream.records, config.windows);

    const aggregator = startService("aggregator.ts", vars);
    const ready = await aggregator.next("ready", 120_000);
    // The metrics server binds to loopback unless told otherwise.
    expect(String(ready.metrics)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const producer = startService("producer.ts", vars, [
      "--events",
      String(stream.records.length),
      "--seed",
      "4242",
      "--start-ms",
      String(Date.UTC(2026, 10, 25, 2)),
      "--stay",
    ]);
    const producerReady = await producer.next("ready", 60_000);
    const produced = await producer.next("produced", 120_000);
    expect(produced.sent).toBe(stream.records.length);
    expect(produced.partitionMismatches).toBe(0);
    const producerMetrics = await scrape(String(producerReady.metrics));
    producer.child.kill("SIGTERM");
    expect(await producer.exited).toBe(0);

    await finishStream({
      config,
      kafka: new Kafka({ ...kafkaClientConfig(config, "sluice-test"), logLevel: logLevel.NOTHING }),
      records: stream.records,
      timeoutMs: 150_000,
    });
    const aggregatorMetrics = await scrape(String(ready.metrics));
    aggregator.child.kill("SIGTERM");
    const stopped = await aggregator.next("stopped", 60_000);
    expect(await aggregator.exited).toBe(0);

    const counters = stopped.counters as {
      dlq: Record<string, number>;
      late: Record<string, number>;
    };
    const jobs = Object.values(config.applications).filter((a) => a !== config.applications.raw);
    const pick = (r: Record<string, number>) => Object.fromEntries(jobs.map((j) => [j, r[j] ?? 0]));
    const results = await readResults(config);
    for (const c of verify(truth, results, {
      dlq: pick(counters.dlq),
      late: pick(counters.late),
    })) {
      expect(c.ok, `${c.name}: expected ${c.expected}, got ${c.actual}\n${c.detail ?? ""}`).toBe(
        true,
      );
    }
    expect(results.sessions.length).toBe(truth.totals.sessions);
    expect(truth.totals.invalid).toBeGreaterThan(0);

    // Every log line of both services and both metric expositions.
    expect(producerMetrics).toMatch(/^sluice_producer_/m);
    expect(aggregatorMetrics).toMatch(/^sluice_sink_/m);
    expect(aggregatorMetrics).toMatch(/^sluice_job_/m);
    const everything = [
      ...aggregator.output,
      ...producer.output,
      producerMetrics,
      aggregatorMetrics,
    ].join("\n");
    // Sanity: the text holds the services' events and kafkajs's SASL handshakes.
    expect(everything.includes('"event":"stopped"'), "aggregator stop line").toBe(true);
    expect(
      everything.includes("SASL SCRAM SHA512 authentication successful"),
      "kafkajs SASL log",
    ).toBe(true);
    expectNoSecret(everything);
    // ...and the check does see a secret in each form it looks for.
    for (const form of leakForms(creds.redis.username, creds.redis.password)) {
      expect(() => expectNoSecret(`log line ${form} end`)).toThrow(/a secret leaked/);
    }
  });
});

describe("wrong credentials fail each entry point fast, naming the service, never the secret", () => {
  const wrong = "wrong-secret-Zq9/+=";
  const wrongForms = [
    ...leakForms(creds.kafka.username, wrong),
    ...leakForms(creds.clickhouse.username, wrong),
  ];
  const printed = (err: unknown) => {
    const text = inspect(err, { depth: 12 });
    expectNoSecret(text, wrongForms);
    return text;
  };

  it("Kafka: the producer fails with PRODUCER_SEND_FAILED", async () => {
    const config = configOf(secureVars({ SLUICE_KAFKA_SASL_PASSWORD: wrong }));
    const producer = createProducer({
      kafka: new Kafka({ ...kafkaClientConfig(config, "sluice-test"), logLevel: logLevel.NOTHING }),
      topic: config.topic,
      schema: UserEventCodec,
      key: "user_id",
      eventTime: "ts",
    });
    const t0 = Date.now();
    const err = await producer.send(stream.records.find((r) => r.event)!.event!).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await producer.close().catch(() => undefined);
    expect(err).toBeInstanceOf(ProducerError);
    expect(err.code).toBe("PRODUCER_SEND_FAILED");
    expect(err.message).toMatch(/Kafka refused .*SASL SCRAM SHA512 authentication failed/);
    printed(err);
  });

  it("Kafka: the windowing jobs fail to start with WINDOWING_KAFKA_FAILED, without retrying", async () => {
    const config = configOf(secureVars({ SLUICE_KAFKA_SASL_PASSWORD: wrong }));
    const t0 = Date.now();
    const err = await startAggregator({ config, kafkaLogLevel: logLevel.NOTHING }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(err).toBeInstanceOf(WindowingError);
    expect(err.code).toBe("WINDOWING_KAFKA_FAILED");
    expect(err.message).toMatch(/^Kafka failed while .*SASL SCRAM SHA512 authentication failed/);
    printed(err);
  });

  it("ClickHouse: the sink fails with SINK_REJECTED (wrong password for the user)", async () => {
    const config = configOf(secureVars({ SLUICE_CLICKHOUSE_PASSWORD: wrong }));
    const sink = createClickHouseSink({
      url: config.clickhouseUrl,
      table: config.tables.events,
      toRow: (e: (typeof stream.records)[number]["event"] & object) => ({ ...rawEventRow(e) }),
      identity: (e) => e.event_id,
    });
    const t0 = Date.now();
    const err = await sink
      .write([stream.records.find((r) => r.event)!.event!])
      .then(() => sink.flush())
      .catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await sink.close().catch(() => undefined);
    expect(err).toBeInstanceOf(SinkError);
    expect(err.code).toBe("SINK_REJECTED");
    expect(err.message).toMatch(/^clickhouse sink .* failed \(CLICKHOUSE_19[2-4]\): .*password/i);
    printed(err);
  });

  it("Redis: the sink fails with SINK_REJECTED (REDIS_WRONGPASS)", async () => {
    const config = configOf(secureVars({ SLUICE_REDIS_PASSWORD: wrong }));
    const sink = createRedisOutputs(config).minuteCounts();
    const t0 = Date.now();
    const result = {
      key: "click",
      windowStart: 0,
      windowEnd: 60_000,
      value: 1,
      final: true,
      emitSeq: 0,
      partition: 0,
      id: "0:60000:0:click",
    };
    const err = await sink
      .write([result])
      .then(() => sink.flush())
      .catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await sink.close().catch(() => undefined);
    expect(err).toBeInstanceOf(SinkError);
    expect(err.code).toBe("SINK_REJECTED");
    expect(err.message).toMatch(/^redis sink .*\(REDIS_WRONGPASS\)/);
    printed(err);
  });

  it.each([
    [
      "Kafka",
      { SLUICE_KAFKA_SASL_PASSWORD: wrong },
      /DeploymentError: Kafka at 127\.0\.0\.1:\d+: SASL/,
    ],
    [
      "ClickHouse",
      { SLUICE_CLICKHOUSE_PASSWORD: wrong },
      /DeploymentError: ClickHouse at http:\/\/sluice:\*\*\*@/,
    ],
    [
      "Redis",
      { SLUICE_REDIS_PASSWORD: wrong },
      /DeploymentError: Redis at redis:\/\/sluice:\*\*\*@.*WRONGPASS/,
    ],
  ] as const)(
    "%s: the aggregator process exits at start, naming the service",
    async (_service, override, expected) => {
      const t0 = Date.now();
      const svc = startService("aggregator.ts", secureVars(override));
      const code = await svc.exited;
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(code).not.toBe(0);
      const text = svc.output.join("\n");
      expect(text).toMatch(expected);
      expectNoSecret(text, wrongForms);
    },
  );
});
