// Exactly-once across crashes and rebalances: the aggregator runs as separate
// processes (each with its own state directory, like pods with their own
// volumes); during the stream it is scaled 1 -> 2, one instance is SIGKILLed
// (the other takes its partitions over and restores their state from the
// changelog), another is started and the count goes back 2 -> 1; when the
// final window results flow, Redis (a private redis-server, so the shared
// stack is never stopped) is down for 10 seconds and the Redis sinks must wait
// and retry. The final
// ClickHouse tables, Redis keys and committed DLQ / late records must still
// equal the ground truth exactly: no loss, no double counting.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { finishStream } from "../src/pipeline/finish.js";
import { waitForCatchUp } from "../src/pipeline/progress.js";
import { readResults, verify } from "../src/pipeline/results.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { countCommittedRecords } from "../src/pipeline/topic-count.js";
import { produceRecords } from "../src/services/producer-service.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const PARTITIONS = 4;
const redisPort = await freePort();
const config = pipelineConfig(uniqueName("it_crash"), {
  partitions: PARTITIONS,
  redisUrl: `redis://127.0.0.1:${redisPort}`,
});
const stream = generateEvents({
  count: 12_000,
  seed: 77,
  startMs: Date.UTC(2026, 10, 24, 3),
  partitions: PARTITIONS,
});
const truth = computeGroundTruth(stream.records, config.windows);
const children: ChildProcess[] = [];
const stateDirs: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A private redis-server with an append-only file, so a restart keeps its data. */
async function startPrivateRedis(dir: string): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(redisPort),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--save",
      "",
    ],
    { stdio: "ignore" },
  );
  children.push(child);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port: redisPort });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("private redis-server did not start");
}

const metricsUrls = new Map<ChildProcess, string>();

/** Starts an aggregator process with its own state directory; resolves once its jobs run. */
async function startAggregatorProcess(): Promise<ChildProcess> {
  const stateDir = await mkdtemp(path.join(tmpdir(), "sluice-agg-"));
  stateDirs.push(stateDir);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(root, "integration/src/bin/aggregator.ts")],
    {
      cwd: root,
      env: {
        ...process.env,
        TSX_TSCONFIG_PATH: path.join(root, "integration/tsconfig.json"),
        SLUICE_NAMESPACE: config.namespace,
        SLUICE_PARTITIONS: String(PARTITIONS),
        SLUICE_METRICS_PORT: "0",
        SLUICE_STATE_DIR: stateDir,
        SLUICE_REDIS_URL: config.redisUrl,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr = (stderr + d).slice(-3000);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`aggregator not ready:\n${stderr}`)), 90_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`aggregator exited with ${code}:\n${stderr}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes('"event":"ready"')) {
        metricsUrls.set(child, JSON.parse(line.slice(line.indexOf("{"))).metrics);
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describe("aggregator scaled 1 -> 2 -> 1 with a SIGKILL in between", () => {
  let redisDir = "";

  beforeAll(async () => {
    redisDir = await mkdtemp(path.join(tmpdir(), "sluice-redis-"));
    await startPrivateRedis(redisDir);
    await setUpPipeline(config);
  });

  afterAll(async () => {
    const aggregators = children.filter((c) => c.spawnfile !== "redis-server");
    for (const c of aggregators)
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(aggregators.map(exited));
    await tearDownPipeline(config).catch(() => undefined);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
    await Promise.all(children.map(exited));
    for (const d of [...stateDirs, redisDir]) await rm(d, { recursive: true, force: true });
  });

  it("ends with exactly the ground truth", { timeout: 300_000 }, async () => {
    const kafka = new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING });
    const quarter = Math.floor(stream.records.length / 4);
    const chunk = (i: number) =>
      stream.records.slice(i * quarter, i === 3 ? undefined : (i + 1) * quarter);
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

    const a = await startAggregatorProcess();
    await produceRecords({ config, records: chunk(0) });
    const b = await startAggregatorProcess(); // scale 1 -> 2
    await produceRecords({ config, records: chunk(1) });
    await pause(3000);
    a.kill("SIGKILL"); // b takes every partition over
    await exited(a);
    await produceRecords({ config, records: chunk(2) });
    const c = await startAggregatorProcess(); // back to 2
    await produceRecords({ config, records: chunk(3) });
    await pause(2000);
    b.kill("SIGTERM"); // scale 2 -> 1, graceful
    expect(await exited(b)).toBe(0);
    // The re-keyed jobs' windows close at the end of the stream: take Redis
    // down for 10 s right when their results start flowing to it.
    let markersSent!: () => void;
    const sent = new Promise<void>((r) => {
      markersSent = r;
    });
    const finished = finishStream({
      config,
      kafka,
      records: stream.records,
      timeoutMs: 150_000,
      onMarkers: () => markersSent(),
    });
    await sent;
    const redis = children.find((p) => p.spawnfile === "redis-server" && p.exitCode === null)!;
    redis.kill("SIGTERM");
    await exited(redis);
    await pause(10_000);
    await startPrivateRedis(redisDir);
    await finished;
    // While Redis was down the jobs could not commit (sinks flush first), so
    // their lag looked settled; wait again, longer than the sinks' largest
    // retry delay (10 s), for the commits that follow the outage.
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitForCatchUp(admin, Object.values(config.applications), [config.topic], {
        timeoutMs: 120_000,
        stablePolls: 15,
      });
    } finally {
      await admin.disconnect();
    }
    // The Redis sinks of the surviving instance did hit the outage and retried.
    const metrics = await (await fetch(metricsUrls.get(c)!)).text();
    const redisRetries = metrics
      .split("\n")
      .filter((l) => /^sluice_sink_(retries|failures)_total\{sink="redis"/.test(l))
      .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
    expect(redisRetries).toBeGreaterThan(0);
    c.kill("SIGTERM");
    expect(await exited(c)).toBe(0);

    const jobs = [
      config.applications.sessions,
      config.applications.counts,
      config.applications.pages,
    ];
    const dlq: Record<string, number> = {};
    const late: Record<string, number> = {};
    for (const j of jobs) {
      dlq[j] = await countCommittedRecords(kafka, `${j}-dlq`);
      late[j] = await countCommittedRecords(kafka, `${j}-late`);
    }
    const checks = verify(truth, await readResults(config), { dlq, late });
    const failed = checks.filter((x) => !x.ok);
    expect(
      failed.map((x) => `${x.name}: expected ${x.expected}, got ${x.actual}\n${x.detail ?? ""}`),
    ).toEqual([]);
  });
});
