// The aggregator's raw-events copy (source topic → ClickHouse `events`) is
// supervised like its jobs: when its sink fails for good — here the table is
// missing for longer than the sinks' missing-table bound, as during a
// ClickHouse restart slower than that bound — the consumer starts over from
// its last commit with a new sink, and once the table is back every valid
// and late event is in it exactly once.
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { logLevel } from "kafkajs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { type Aggregator, startAggregator } from "../src/services/aggregator-service.js";
import { produceRecords } from "../src/services/producer-service.js";

const config = pipelineConfig(uniqueName("it_raw"), { partitions: 3 });
const stream = generateEvents({
  count: 3_000,
  seed: 77,
  startMs: Date.UTC(2026, 10, 24, 6, 0),
  partitions: 3,
});
const truth = computeGroundTruth(stream.records, config.windows);
let ch: ClickHouseClient;
let aggregator: Aggregator | undefined;

beforeAll(async () => {
  await setUpPipeline(config);
  ch = createClient({ url: config.clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });
});

afterAll(async () => {
  await aggregator?.stop().catch(() => undefined);
  await ch?.command({ query: `DROP TABLE IF EXISTS \`${config.tables.events}_away\`` });
  await ch?.close();
  await tearDownPipeline(config);
});

const rawCount = async () => {
  const rs = await ch.query({
    query: `SELECT count() AS n, uniqExact(event_id) AS u FROM \`${config.tables.events}\` FINAL`,
    format: "JSONEachRow",
  });
  const [row] = await rs.json<{ n: string; u: string }>();
  return { n: Number(row!.n), unique: Number(row!.u) };
};

it("restarts the raw-events consumer with a new sink after its sink failed, and loses nothing", async () => {
  const events = config.tables.events;
  const restarts: string[] = [];
  aggregator = await startAggregator({
    config,
    missingTableRetryMs: 500,
    kafkaLogLevel: logLevel.NOTHING,
    onJobRestart: (app, reason) => restarts.push(`${app}: ${reason}`),
  });
  await ch.command({ query: `RENAME TABLE \`${events}\` TO \`${events}_away\`` });
  await produceRecords({ config, records: stream.records });
  const failedBy = Date.now() + 60_000;
  while (!restarts.some((r) => r.startsWith(config.applications.raw)) && Date.now() < failedBy) {
    await new Promise((r) => setTimeout(r, 200));
  }
  await ch.command({ query: `RENAME TABLE \`${events}_away\` TO \`${events}\`` });
  const raw = restarts.filter((r) => r.startsWith(config.applications.raw));
  expect(raw.length).toBeGreaterThan(0);
  expect(raw[0]).toMatch(/SINK_REJECTED|CLICKHOUSE_60|does not exist/);
  const want = truth.totals.valid + truth.totals.late;
  const doneBy = Date.now() + 90_000;
  let got = await rawCount();
  while (got.unique < want && Date.now() < doneBy) {
    await new Promise((r) => setTimeout(r, 500));
    got = await rawCount();
  }
  await aggregator.stop();
  aggregator = undefined;
  got = await rawCount();
  expect(got).toEqual({ n: want, unique: want });
}, 240_000);
