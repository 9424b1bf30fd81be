// `npm run demo` (via scripts/demo.mjs): the reference pipeline end to end on
// the services given by SLUICE_* (the local stack by default).
//
//   --events N     records to produce (default 300000: about 100 s on this
//                  2-core machine; more work too, they just take longer)
//   --seed S       generator seed (default 1)
//   --seconds T    produce over about T seconds of wall time (default 30)
//
// Steps: reset and create topic + tables, start the aggregator (child
// process), produce the events (child process), wait until the aggregator has
// consumed everything, send end-of-stream markers so every window closes, wait
// again, stop the aggregator, then read ClickHouse and Redis, print a report
// and check it against the generator's ground truth. Exit code 0 only when
// every check passes.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { Kafka, logLevel } from "kafkajs";
import { redactUrl } from "../env.js";
import { computeGroundTruth, generateEvents, generatorDefaults } from "../generator/index.js";
import { kafkaClientConfig, pipelineConfig, redisKeys } from "../pipeline/config.js";
import { finishStream } from "../pipeline/finish.js";
import { printReport } from "../pipeline/report.js";
import { readResults, verify } from "../pipeline/results.js";
import { setUpPipeline, tearDownPipeline } from "../pipeline/setup.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const { values } = parseArgs({
  options: {
    events: { type: "string", default: "300000" },
    seed: { type: "string", default: "1" },
    seconds: { type: "string", default: "30" },
  },
});
const events = Number(values.events);
const seed = Number(values.seed);
const seconds = Number(values.seconds);
if (!(Number.isInteger(events) && events > 0) || !Number.isFinite(seed) || !(seconds > 0)) {
  console.error("usage: npm run demo -- [--events N] [--seed S] [--seconds T]  (N, T > 0)");
  process.exit(2);
}

const config = pipelineConfig("");
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const say = (msg: string) => console.log(`[${elapsed().padStart(6)}] ${msg}`);

async function preflight(): Promise<void> {
  const problems: string[] = [];
  const kafka = new Kafka({
    ...kafkaClientConfig(config, "sluice-demo"),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 1 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (err) {
    problems.push(
      `Kafka at ${config.kafkaBrokers.join(",")} does not answer (${(err as Error).message}). ` +
        "Start it with `npm run stack:up` or set SLUICE_KAFKA_BROKERS.",
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const ch = createClient({ url: config.clickhouseUrl, request_timeout: 5000 });
  const ping = await ch.ping();
  if (!ping.success) {
    problems.push(
      `ClickHouse at ${redactUrl(config.clickhouseUrl)} does not answer (${ping.error?.message}). ` +
        "Start it with `npm run stack:up` or set SLUICE_CLICKHOUSE_URL.",
    );
  }
  await ch.close();
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    problems.push(
      `Redis at ${redactUrl(config.redisUrl)} does not answer (${(err as Error).message}). ` +
        "Start it with `npm run stack:up` or set SLUICE_REDIS_URL.",
    );
  } finally {
    redis.disconnect();
  }
  if (problems.length > 0) {
    console.error(`\nThe demo cannot start:\n- ${problems.join("\n- ")}`);
    process.exit(1);
  }
}

interface Service {
  child: ChildProcess;
  /** Resolves with the first `@@sluice` message whose event is `name`. */
  next(name: string, timeoutMs: number): Promise<Record<string, unknown>>;
  exited: Promise<number>;
  stderrTail(): string;
}

const children: ChildProcess[] = [];

/** Stops every child still running: SIGTERM, then SIGKILL after 15 s. */
async function stopChildren(): Promise<void> {
  const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    alive.map(
      (c) =>
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => c.kill("SIGKILL"), 15_000);
          c.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          c.kill("SIGTERM");
        }),
    ),
  );
}

function startService(name: string, script: string, args: string[]): Service {
  // node --import tsx, not the tsx wrapper: signals then reach the service itself.
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(root, "integration", "src", "bin", script), ...args],
    { cwd: root, env: process.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  const waiters: Array<{ name: string; resolve: (m: Record<string, unknown>) => void }> = [];
  const seen: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (!line.startsWith("@@sluice ")) return;
    const msg = JSON.parse(line.slice(9)) as Record<string, unknown>;
    if (msg.event === "progress") {
      say(
        `${name}: ${Number(msg.sent).toLocaleString()} / ${Number(msg.of).toLocaleString()} sent`,
      );
    }
    seen.push(msg);
    for (const w of waiters.filter((w) => w.name === msg.event)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(msg);
    }
  });
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  return {
    child,
    exited,
    stderrTail: () => stderr.trim().split("\n").slice(-15).join("\n"),
    next(event, timeoutMs) {
      const already = seen.find((m) => m.event === event);
      if (already) return Promise.resolve(already);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name} did not report "${event}" within ${timeoutMs / 1000}s`)),
          timeoutMs,
        );
        exited.then((code) => {
          clearTimeout(timer);
          reject(
            new Error(`${name} exited (code ${code}) before "${event}":\n${this.stderrTail()}`),
          );
        });
        waiters.push({
          name: event,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
  };
}

async function main(): Promise<number> {
  say(
    `Sluice demo: ${events.toLocaleString()} events, seed ${seed}; Kafka ${config.kafkaBrokers.join(",")}, ` +
      `ClickHouse ${redactUrl(config.clickhouseUrl)}, Redis ${redactUrl(config.redisUrl)}`,
  );
  await preflight();
  say(`resetting topic "${config.topic}", tables, Redis keys ${redisKeys.all(config)} and state`);
  await tearDownPipeline(config);
  const { ttl } = await setUpPipeline(config);
  say(
    `created topic "${config.topic}" (${config.partitions} partitions) and tables ` +
      `${Object.values(config.tables).join(", ")}` +
      (ttl
        ? ` (raw events with a ${config.hotTierDays}-day TTL)`
        : " (this server has no table TTL)"),
  );

  // Event time: a span ending about an hour ago, aligned to the hour.
  const spanMs = (events / generatorDefaults.eventsPerSecond) * 1000;
  const startMs = Math.floor((Date.now() - spanMs - 3_600_000) / 3_600_000) * 3_600_000;
  const genOptions = { count: events, seed, startMs, partitions: config.partitions };

  // The producer regenerates the same stream from the same seed; the truth is computed here.
  const stream = generateEvents(genOptions);
  const truth = computeGroundTruth(stream.records, config.windows);
  say(
    `ground truth: ${truth.totals.sessions.toLocaleString()} sessions, ` +
      `${truth.minuteCounts.length} (minute, type) counts, ${truth.pageWindows.length.toLocaleString()} (window, page) counts, ` +
      `${truth.funnel.matches.length.toLocaleString()} funnel matches`,
  );

  const aggregator = startService("aggregator", "aggregator.ts", ["--metrics-port", "9465"]);
  const ready = await aggregator.next("ready", 120_000);
  say(
    `aggregator running: five jobs (sessions, counts, pages, funnel converted / abandoned) + raw events; metrics at ${ready.metrics}`,
  );

  const producer = startService("producer", "producer.ts", [
    "--events",
    String(events),
    "--seed",
    String(seed),
    "--start-ms",
    String(startMs),
    "--rate",
    String(Math.ceil(events / seconds)),
    "--metrics-port",
    "9464",
  ]);
  say("producer running; metrics at http://127.0.0.1:9464/metrics");
  const produced = await producer.next("produced", 15 * 60_000);
  await producer.exited;
  say(
    `produced ${Number(produced.sent).toLocaleString()} records in ${(Number(produced.durationMs) / 1000).toFixed(1)}s ` +
      `(${produced.valid} valid, ${produced.late} late, ${produced.invalid} invalid)`,
  );

  const kafka = new Kafka({
    ...kafkaClientConfig(config, "sluice-demo"),
    logLevel: logLevel.NOTHING,
  });
  let lastSay = 0;
  const aggregatorDied = aggregator.exited.then((code) => {
    throw new Error(
      `the aggregator exited (code ${code}) before it finished:\n${aggregator.stderrTail()}`,
    );
  });
  aggregatorDied.catch(() => undefined); // it exits on purpose later
  await Promise.race([
    aggregatorDied,
    finishStream({
      config,
      kafka,
      records: stream.records,
      timeoutMs: 10 * 60_000,
      onPoll: (lags) => {
        if (Date.now() - lastSay < 5000) return;
        lastSay = Date.now();
        say(
          `waiting for the aggregator: lag ${lags
            .map((l) => `${l.groupId}=${Object.values(l.lagByTopic).reduce((a, b) => a + b, 0)}`)
            .join(" ")}`,
        );
      },
      onMarkers: (n) =>
        say(`aggregator caught up; sent ${n} end-of-stream markers to close every window`),
    }),
  ]);

  aggregator.child.kill("SIGTERM");
  const stopped = await aggregator.next("stopped", 120_000);
  await aggregator.exited;
  const counters = stopped.counters as {
    late: Record<string, number>;
    dlq: Record<string, number>;
  };
  say("aggregator stopped (drained, committed, sinks flushed); reading ClickHouse and Redis");

  const results = await readResults(config);
  const jobApps = Object.values(config.applications).filter((a) => a !== config.applications.raw);
  const pick = (r: Record<string, number>) =>
    Object.fromEntries(jobApps.map((a) => [a, r[a] ?? 0]));
  const checks = verify(truth, results, { dlq: pick(counters.dlq), late: pick(counters.late) });
  checks.unshift({
    name: "producer: every event on the partition the generator expected",
    expected: 0,
    actual: Number(produced.partitionMismatches),
    ok: Number(produced.partitionMismatches) === 0,
  });
  const ok = printReport({
    // The report names the services: never with their passwords.
    config: {
      ...config,
      clickhouseUrl: redactUrl(config.clickhouseUrl),
      redisUrl: redactUrl(config.redisUrl),
    },
    truth,
    results,
    checks,
    ttl,
    elapsed: elapsed(),
  });
  return ok ? 0 : 1;
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping the services`);
    void stopChildren().then(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    console.error(`\nThe demo failed: ${(err as Error)?.message ?? err}`);
    await stopChildren();
    process.exit(1);
  },
);
