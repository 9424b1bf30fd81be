// The aggregator service: `tsx integration/src/bin/aggregator.ts [--namespace NS] [--metrics-port P]`.
// Runs until SIGTERM/SIGINT, then drains, commits, closes and prints its
// counters as one JSON line prefixed `@@sluice `.
import { parseArgs } from "node:util";
import { kafkaLogLevelFromEnv } from "../env.js";
import { pipelineConfig } from "../pipeline/config.js";
import { startAggregator } from "../services/aggregator-service.js";
import { prepareDeployment } from "../services/deployment-setup.js";
import { startServiceObservability } from "../services/observe.js";

const { values } = parseArgs({
  options: {
    namespace: { type: "string", default: process.env.SLUICE_NAMESPACE ?? "" },
    "metrics-port": { type: "string", default: process.env.SLUICE_METRICS_PORT ?? "9465" },
    "metrics-host": { type: "string", default: process.env.SLUICE_METRICS_HOST ?? "127.0.0.1" },
    forever: { type: "boolean", default: true },
  },
});

const config = pipelineConfig(values.namespace);
const obs = await startServiceObservability({
  port: Number(values["metrics-port"]),
  host: values["metrics-host"],
  requireJob: true,
});
// Topic and tables are created when missing (idempotent), so the service
// starts on an empty cluster too (docker-compose, Kubernetes).
await prepareDeployment(config);
const kafkaLogLevel = kafkaLogLevelFromEnv();
const aggregator = await startAggregator({
  config,
  ...(kafkaLogLevel === undefined ? {} : { kafkaLogLevel, jobKafkaLogLevel: kafkaLogLevel }),
  onJobFailure: (app, reason) => {
    console.error(`aggregator: job ${app} failed (${reason}); stopping`);
    void shutdown("job failure", 1);
  },
  onJobRestart: (app, reason, n) =>
    console.error(`aggregator: job ${app} stopped (${reason}); restart ${n}`),
  onRetry: (err, n) =>
    console.error(`aggregator: start attempt ${n} failed (${(err as Error).message}); retrying`),
});
console.log(`@@sluice ${JSON.stringify({ event: "ready", metrics: `${obs.url}/metrics` })}`);

let exiting = false;
async function shutdown(signal: string, exitCode = 0) {
  if (exiting) return;
  exiting = true;
  let code = exitCode;
  try {
    await aggregator.stop();
  } catch (err) {
    console.error(`aggregator: stop after ${signal} failed:`, err);
    code = 1;
  }
  console.log(`@@sluice ${JSON.stringify({ event: "stopped", counters: aggregator.counters })}`);
  await obs.close();
  process.exit(code);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
