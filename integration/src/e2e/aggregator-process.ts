import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { PipelineConfig } from "../pipeline/config.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** A running aggregator process (`integration/src/bin/aggregator.ts`). */
export interface AggregatorProcess {
  child: ChildProcess;
  /** Its `/metrics` URL; `/healthz` and `/readyz` live beside it. */
  metricsUrl: string;
  /** The last 3,000 characters it wrote to stderr. */
  stderrTail(): string;
}

// Children still running when this process exits are killed with it.
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/**
 * Starts the aggregator service as a child process with its own state
 * directory (like a pod with its own volume), pointed at the deployment's
 * Kafka, ClickHouse and Redis; resolves once its jobs run (its `ready` line).
 *
 * @param opts - the deployment, the state directory, how long to wait
 * @returns the process and its metrics URL
 * @throws Error with its stderr when it exits or is not ready in time
 */
export async function startAggregatorProcess(opts: {
  config: PipelineConfig;
  stateDir: string;
  readyTimeoutMs?: number;
  /**
   * Directory for this process's output (`<name>.log`: stdout and stderr)
   * and trace (`<name>.trace.jsonl`, see trace-hook.ts). @defaultValue none
   */
  logDir?: string;
  /** File name stem in `logDir`. @defaultValue "aggregator" */
  logName?: string;
}): Promise<AggregatorProcess> {
  const { config } = opts;
  const stem = opts.logDir ? path.join(opts.logDir, opts.logName ?? "aggregator") : undefined;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      ...(stem ? ["--import", path.join(root, "integration/src/e2e/trace-hook.ts")] : []),
      path.join(root, "integration/src/bin/aggregator.ts"),
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        TSX_TSCONFIG_PATH: path.join(root, "integration/tsconfig.json"),
        SLUICE_NAMESPACE: config.namespace,
        SLUICE_PARTITIONS: String(config.partitions),
        SLUICE_METRICS_PORT: "0",
        SLUICE_STATE_DIR: opts.stateDir,
        SLUICE_KAFKA_BROKERS: config.kafkaBrokers.join(","),
        SLUICE_CLICKHOUSE_URL: config.clickhouseUrl,
        SLUICE_REDIS_URL: config.redisUrl,
        ...(stem ? { SLUICE_E2E_TRACE_FILE: `${stem}.trace.jsonl` } : {}),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (stem) {
    const log = createWriteStream(`${stem}.log`, { flags: "a" });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    child.once("close", () => log.end());
  }
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr = (stderr + d).slice(-3000);
  });
  const lines = createInterface({ input: child.stdout! });
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`aggregator not ready:\n${stderr}`));
    }, opts.readyTimeoutMs ?? 90_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`aggregator exited with ${code ?? signal}:\n${stderr}`));
    });
    lines.on("line", (line) => {
      if (line.includes('"event":"ready"')) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice(line.indexOf("{"))).metrics);
      }
    });
  });
  return { child, metricsUrl, stderrTail: () => stderr };
}
