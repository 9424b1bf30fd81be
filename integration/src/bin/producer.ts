// The producer service: `tsx integration/src/bin/producer.ts --events N --seed S
// [--start-ms T] [--rate R] [--forever]`. Generates the seeded event stream and
// sends it; prints a summary as one JSON line prefixed `@@sluice `. With
// `--forever` it keeps producing fresh streams (seed + 1, ...) until SIGTERM.
// With `--stay` it keeps serving /metrics after the last stream until SIGTERM.
// Kafka TLS/SASL and the ClickHouse/Redis credentials come from the
// environment (see integration/README.md).
import { parseArgs } from "node:util";
import { kafkaLogLevelFromEnv } from "../env.js";
import { generateEvents } from "../generator/generate.js";
import { pipelineConfig } from "../pipeline/config.js";
import { prepareDeployment } from "../services/deployment-setup.js";
import { startServiceObservability } from "../services/observe.js";
import { produceRecords } from "../services/producer-service.js";

const { values } = parseArgs({
  options: {
    namespace: { type: "string", default: process.env.SLUICE_NAMESPACE ?? "" },
    events: { type: "string", default: "300000" },
    seed: { type: "string", default: "1" },
    "start-ms": { type: "string" },
    rate: { type: "string" },
    forever: { type: "boolean", default: false },
    stay: { type: "boolean", default: false },
    "metrics-port": { type: "string", default: process.env.SLUICE_METRICS_PORT ?? "9464" },
    "metrics-host": { type: "string", default: process.env.SLUICE_METRICS_HOST ?? "127.0.0.1" },
  },
});

const config = pipelineConfig(values.namespace);
const obs = await startServiceObservability({
  port: Number(values["metrics-port"]),
  host: values["metrics-host"],
  requireJob: false,
});
// Topic and tables are created when missing (idempotent), so the service
// starts on an empty cluster too (docker-compose, Kubernetes).
await prepareDeployment(config);
console.log(`@@sluice ${JSON.stringify({ event: "ready", metrics: `${obs.url}/metrics` })}`);
const abort = new AbortController();
process.on("SIGTERM", () => abort.abort());
process.on("SIGINT", () => abort.abort());

const count = Number(values.events);
let seed = Number(values.seed);
let startMs = values["start-ms"] ? Number(values["start-ms"]) : Date.now() - 6 * 3_600_000;
let code = 0;
try {
  do {
    const stream = generateEvents({ count, seed, startMs, partitions: config.partitions });
    const summary = await produceRecords({
      config,
      records: stream.records,
      ratePerSecond: values.rate ? Number(values.rate) : undefined,
      signal: abort.signal,
      kafkaLogLevel: kafkaLogLevelFromEnv(),
      onProgress: (sent) =>
        console.log(`@@sluice ${JSON.stringify({ event: "progress", sent, of: count })}`),
    });
    console.log(`@@sluice ${JSON.stringify({ event: "produced", seed, ...summary })}`);
    const last = stream.records.at(-1)?.event?.ts ?? startMs;
    startMs = last + 1000;
    seed++;
  } while (values.forever && !abort.signal.aborted);
  if (values.stay && !abort.signal.aborted) {
    await new Promise((resolve) => abort.signal.addEventListener("abort", resolve));
  }
} catch (err) {
  console.error("producer failed:", err);
  code = 1;
} finally {
  await obs.close();
}
process.exit(code);
