// Exactly-once across crashes and rebalances: the aggregator runs as separate
// processes (each with its own state directory, like pods with their own
// volumes); during the stream it is scaled 1 -> 2, one instance is SIGKILLed
// (the other takes its partitions over and restores their state from the
// changelog), another is started and the count goes back 2 -> 1; when the
// final window results flow, Redis (a private redis-server, so the shared
// stack is never stopped) is down for 10 seconds and the Redis sinks must wait
// and retry. The final
// ClickHouse tables (funnel matches included), Redis keys and committed DLQ /
// late records must still equal the ground truth exactly: no loss, no double
// counting.

import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PrivateRedis, startPrivateRedis } from "../../scripts/stack.mjs";
import { startAggregatorProcess } from "../src/e2e/aggregator-process.js";
import { countDlqAndLate } from "../src/e2e/job-counters.js";
import { exited, freePort } from "../src/e2e/processes.js";
import { uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { finishStream } from "../src/pipeline/finish.js";
import { waitForCatchUp } from "../src/pipeline/progress.js";
import { readResults, verify } from "../src/pipeline/results.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { countCommittedRecords } from "../src/pipeline/topic-count.js";
import { produceRecords } from "../src/services/producer-service.js";

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
const metricsUrls = new Map<ChildProcess, string>();

/** Starts an aggregator process with its own state directory; resolves once its jobs run. */
async function startAggregator(): Promise<ChildProcess> {
  const stateDir = await mkdtemp(path.join(tmpdir(), "sluice-agg-"));
  stateDirs.push(stateDir);
  const { child, metricsUrl } = await startAggregatorProcess({ config, stateDir });
  children.push(child);
  metricsUrls.set(child, metricsUrl);
  return child;
}

describe("aggregator scaled 1 -> 2 -> 1 with a SIGKILL in between", () => {
  let redisDir = "";
  let redis: PrivateRedis | undefined;

  beforeAll(async () => {
    redisDir = await mkdtemp(path.join(tmpdir(), "sluice-redis-"));
    redis = await startPrivateRedis({ port: redisPort, dir: redisDir });
    await setUpPipeline(config);
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map(exited));
    await tearDownPipeline(config).catch(() => undefined);
    await redis?.stop();
    for (const d of [...stateDirs, redisDir]) await rm(d, { recursive: true, force: true });
  });

  it("ends with exactly the ground truth", { timeout: 300_000 }, async () => {
    const kafka = new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING });
    const quarter = Math.floor(stream.records.length / 4);
    const chunk = (i: number) =>
      stream.records.slice(i * quarter, i === 3 ? undefined : (i + 1) * quarter);
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

    const a = await startAggregator();
    await produceRecords({ config, records: chunk(0) });
    const b = await startAggregator(); // scale 1 -> 2
    await produceRecords({ config, records: chunk(1) });
    await pause(3000);
    a.kill("SIGKILL"); // b takes every partition over
    await exited(a);
    await produceRecords({ config, records: chunk(2) });
    const c = await startAggregator(); // back to 2
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
    await redis!.stop();
    await pause(10_000);
    await redis!.restart();
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

    const { dlq, late } = await countDlqAndLate(kafka, config);
    for (const app of [config.applications.funnelConverted, config.applications.funnelAbandoned]) {
      dlq[app] = await countCommittedRecords(kafka, `${app}-dlq`);
      late[app] = await countCommittedRecords(kafka, `${app}-late`);
    }
    // Every funnel match and hour is compared below; there must be matches of both kinds.
    expect(truth.funnel.matches.filter((m) => m.outcome === "converted").length).toBeGreaterThan(
      50,
    );
    expect(truth.funnel.matches.filter((m) => m.outcome === "abandoned").length).toBeGreaterThan(
      50,
    );
    const checks = verify(truth, await readResults(config), { dlq, late });
    const failed = checks.filter((x) => !x.ok);
    expect(
      failed.map((x) => `${x.name}: expected ${x.expected}, got ${x.actual}\n${x.detail ?? ""}`),
    ).toEqual([]);
  });
});
