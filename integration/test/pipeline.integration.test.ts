// End to end on the real stack: the producer service sends 20,000 generated
// events (with out-of-order, late and invalid ones) to Kafka, the aggregator
// runs the three windowing jobs, the two funnel jobs and the raw-events
// consumer into ClickHouse and Redis, the stream is run to completion, and
// every output must equal the generator's ground truth exactly.
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { finishStream } from "../src/pipeline/finish.js";
import { readResults, verify } from "../src/pipeline/results.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { type Aggregator, startAggregator } from "../src/services/aggregator-service.js";
import { produceRecords } from "../src/services/producer-service.js";

const PARTITIONS = 6;
const config = pipelineConfig(uniqueName("it_e2e"), { partitions: PARTITIONS });
const stream = generateEvents({
  count: 20_000,
  seed: 2026,
  // Ten minutes before an hour: the funnel spans two hours.
  startMs: Date.UTC(2026, 10, 24, 6, 50),
  partitions: PARTITIONS,
});
const truth = computeGroundTruth(stream.records, config.windows);

describe("reference pipeline end to end", () => {
  let aggregator: Aggregator | undefined;

  beforeAll(async () => {
    await setUpPipeline(config);
  });

  afterAll(async () => {
    await aggregator?.stop().catch(() => undefined);
    await tearDownPipeline(config);
  });

  it("writes sessions, per-minute counts, leaderboards, funnel and raw events equal to the ground truth", async () => {
    aggregator = await startAggregator({ config, kafkaLogLevel: logLevel.NOTHING });
    const produced = await produceRecords({ config, records: stream.records });
    expect(produced.partitionMismatches).toBe(0);
    await finishStream({
      config,
      kafka: new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING }),
      records: stream.records,
      timeoutMs: 90_000,
    });
    await aggregator.stop();
    const { late, dlq } = aggregator.counters;
    const jobs = Object.values(config.applications).filter((a) => a !== config.applications.raw);
    expect(jobs).toHaveLength(5);
    const pick = (r: Record<string, number>) => Object.fromEntries(jobs.map((j) => [j, r[j] ?? 0]));

    const results = await readResults(config);
    const checks = verify(truth, results, { dlq: pick(dlq), late: pick(late) });
    for (const c of checks) {
      expect(c.ok, `${c.name}: expected ${c.expected}, got ${c.actual}\n${c.detail ?? ""}`).toBe(
        true,
      );
    }
    expect(results.sessions.length).toBe(truth.totals.sessions);
    expect(truth.totals.invalid).toBeGreaterThan(0);
    expect(truth.totals.late).toBeGreaterThan(0);
    // The funnel checks above compare every match and every hour; make sure there are some.
    expect(checks.map((c) => c.name)).toContain("ClickHouse funnel matches = ground truth");
    expect(results.funnelHours.length).toBeGreaterThanOrEqual(2);
    for (const h of results.funnelHours) {
      expect(h.converted).toBeGreaterThan(0);
      expect(h.abandoned).toBeGreaterThan(0);
    }
    expect(late[config.applications.funnelAbandoned]).toBe(truth.funnel.late);
  });
});
