// Exactly-once across a crash: the aggregator runs as its own process, is
// SIGKILLed in the middle of the stream and restarted; the final ClickHouse
// tables, Redis keys and the committed DLQ / late records must still equal the
// ground truth exactly (no loss, no double counting).
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { finishStream } from "../src/pipeline/finish.js";
import { readResults, verify } from "../src/pipeline/results.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { countCommittedRecords } from "../src/pipeline/topic-count.js";
import { produceRecords } from "../src/services/producer-service.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const PARTITIONS = 4;
const config = pipelineConfig(uniqueName("it_crash"), { partitions: PARTITIONS });
const stream = generateEvents({
  count: 12_000,
  seed: 77,
  startMs: Date.UTC(2026, 10, 24, 3),
  partitions: PARTITIONS,
});
const truth = computeGroundTruth(stream.records, config.windows);
const children: ChildProcess[] = [];

/** Starts the aggregator process; resolves once its jobs are running. */
async function startAggregatorProcess(): Promise<ChildProcess> {
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

describe("aggregator killed with SIGKILL mid-stream and restarted", () => {
  beforeAll(async () => {
    await setUpPipeline(config);
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map(exited));
    await tearDownPipeline(config);
  });

  it("ends with exactly the ground truth", async () => {
    const kafka = new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING });
    const half = Math.floor(stream.records.length / 2);

    const first = await startAggregatorProcess();
    await produceRecords({ config, records: stream.records.slice(0, half) });
    // Let it work on the first half for a while, then kill it mid-flight.
    await new Promise((r) => setTimeout(r, 4000));
    first.kill("SIGKILL");
    await exited(first);

    const second = await startAggregatorProcess();
    await produceRecords({ config, records: stream.records.slice(half) });
    await finishStream({ config, kafka, records: stream.records, timeoutMs: 120_000 });
    second.kill("SIGTERM");
    expect(await exited(second)).toBe(0);

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
    for (const c of checks) {
      expect(c.ok, `${c.name}: expected ${c.expected}, got ${c.actual}\n${c.detail ?? ""}`).toBe(
        true,
      );
    }
  });
});
