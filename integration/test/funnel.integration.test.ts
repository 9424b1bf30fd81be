// The funnel jobs of the reference pipeline on the real stack: generated
// events (out of order, late, invalid ones included) through Kafka into two
// pattern jobs (converted, abandoned) and the ClickHouse funnel table; the
// per-hour report must equal the same jobs run in-process on the TestDriver.
import { createClient } from "@clickhouse/client";
import { createTestDriver, defineJob } from "@sluice/windowing";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import { generateEvents } from "../src/generator/index.js";
import type { UserEvent } from "../src/generator/user-event.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { endOfStreamEvents } from "../src/pipeline/end-of-stream.js";
import {
  type FunnelHour,
  type FunnelOutcome,
  funnelPerHourQuery,
  funnelPipeline,
  funnelRow,
  funnelTableDdl,
  startFunnelJobs,
} from "../src/pipeline/funnel.js";
import { waitForCatchUp } from "../src/pipeline/progress.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { UserEventCodec } from "../src/pipeline/user-event-codec.js";
import { produceRecords } from "../src/services/producer-service.js";

const PARTITIONS = 3;
const config = pipelineConfig(uniqueName("it_funnel"), { partitions: PARTITIONS });
const table = `${config.namespace}_funnel`;
const settings = { withinMs: 30 * 60_000, graceMs: 30_000 };
const kafka = new Kafka({
  clientId: "funnel-test",
  brokers: config.kafkaBrokers,
  logLevel: logLevel.NOTHING,
});
const ch = createClient({ url: config.clickhouseUrl });

afterAll(async () => {
  await ch.command({ query: `DROP TABLE IF EXISTS ${table}` }).catch(() => {});
  await ch.close();
  await tearDownPipeline(config);
  const admin = kafka.admin();
  await admin.connect();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(config.namespace));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
});

it("conversion and abandonment per hour in ClickHouse equal the in-process run", {
  timeout: 180_000,
}, async () => {
  const stream = generateEvents({
    count: 10_000,
    seed: 11,
    startMs: Date.UTC(2026, 10, 24, 3),
    partitions: PARTITIONS,
  });
  await setUpPipeline(config);
  await ch.command({ query: funnelTableDdl(table) });
  const maxTs = Math.max(...stream.records.map((r) => r.event?.ts ?? 0));
  const markers = endOfStreamEvents(config, ["/"], maxTs + 24 * 3_600_000);

  // The truth: the same funnel jobs on the TestDriver, fed the same bytes per partition.
  const truth = new Map<number, FunnelHour>();
  for (const outcome of ["converted", "abandoned"] as FunnelOutcome[]) {
    const driver = createTestDriver(
      funnelPipeline(
        defineJob<UserEvent>({ source: { schema: UserEventCodec, eventTime: "ts" } }),
        outcome,
        settings,
      ),
      { partitions: PARTITIONS },
    );
    for (const r of stream.records)
      driver.pipeRaw(r.raw ?? JSON.stringify(r.event), { key: r.key, partition: r.partition });
    for (const m of markers) {
      driver.pipeRaw(JSON.stringify(m), {
        key: m.user_id,
        partition: markerPartition(m.user_id),
      });
    }
    for (const res of driver.results) {
      const row = funnelRow(res, outcome);
      const h = truth.get(row.hour) ?? {
        hour: row.hour,
        converted: 0,
        abandoned: 0,
        revenue_cents: 0,
      };
      h[outcome]++;
      if (outcome === "converted") h.revenue_cents += row.revenue_cents;
      truth.set(row.hour, h);
    }
  }
  const expected = [...truth.values()].sort((a, b) => a.hour - b.hour);
  expect(expected.reduce((a, h) => a + h.converted, 0)).toBeGreaterThan(5);
  expect(expected.reduce((a, h) => a + h.abandoned, 0)).toBeGreaterThan(5);

  await produceRecords({ config, records: stream.records });
  const jobs = await startFunnelJobs(config, table, settings);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitForCatchUp(admin, jobs.applicationIds, [config.topic], { timeoutMs: 90_000 });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: config.topic,
      messages: markers.map((m) => ({ key: m.user_id, value: JSON.stringify(m) })),
    });
    await producer.disconnect();
    await waitForCatchUp(admin, jobs.applicationIds, [config.topic], { timeoutMs: 60_000 });
  } finally {
    await admin.disconnect();
    await jobs.stop();
  }
  const rs = await ch.query({ query: funnelPerHourQuery(table), format: "JSONEachRow" });
  const got = (await rs.json<Record<keyof FunnelHour, string | number>>()).map((r) => ({
    hour: Number(r.hour),
    converted: Number(r.converted),
    abandoned: Number(r.abandoned),
    revenue_cents: Number(r.revenue_cents),
  }));
  expect(got).toEqual(expected);
});

function markerPartition(userId: string): number {
  return Number(/^~eos-(\d+)-/.exec(userId)?.[1]);
}
