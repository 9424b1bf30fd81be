// The top-pages job's Redis pub/sub output: a subscriber on the deployment's
// channel receives one update per page per closed hopping window, and every
// update (window start and end, page, views) equals the ground truth; the
// leaderboard sorted sets hold the same numbers.
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkTopPagesMessages, subscribeTopPages } from "../src/e2e/top-pages-subscriber.js";
import { uniqueName } from "../src/env.js";
import { computeGroundTruth, generateEvents, topPages } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { finishStream } from "../src/pipeline/finish.js";
import { readResults } from "../src/pipeline/results.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { type Aggregator, startAggregator } from "../src/services/aggregator-service.js";
import { produceRecords } from "../src/services/producer-service.js";

const PARTITIONS = 3;
const config = pipelineConfig(uniqueName("it_pubsub"), { partitions: PARTITIONS });
const stream = generateEvents({
  count: 4_000,
  seed: 4242,
  startMs: Date.UTC(2026, 10, 23, 9),
  partitions: PARTITIONS,
});
const truth = computeGroundTruth(stream.records, config.windows);

describe("top-pages pub/sub payload", () => {
  let aggregator: Aggregator | undefined;

  beforeAll(async () => {
    await setUpPipeline(config);
  });

  afterAll(async () => {
    await aggregator?.stop().catch(() => undefined);
    await tearDownPipeline(config);
  });

  it("a subscriber receives every leaderboard update, each equal to the ground truth", async () => {
    const subscriber = await subscribeTopPages(config);
    try {
      aggregator = await startAggregator({ config, kafkaLogLevel: logLevel.NOTHING });
      await produceRecords({ config, records: stream.records });
      await finishStream({
        config,
        kafka: new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING }),
        records: stream.records,
        timeoutMs: 90_000,
      });
      await aggregator.stop();
    } finally {
      await subscriber.close();
    }
    expect(truth.pageWindows.length).toBeGreaterThan(100);
    const checks = checkTopPagesMessages(truth.pageWindows, subscriber, { complete: true });
    expect(
      checks
        .filter((c) => !c.ok)
        .map((c) => `${c.name}: ${c.actual} (want ${c.expected})\n${c.detail}`),
    ).toEqual([]);
    expect(subscriber.messages.length).toBe(truth.pageWindows.length);

    // One window read as a leaderboard: its updates, ranked by views, are the truth's top pages.
    const windowStart = truth.pageWindows[Math.floor(truth.pageWindows.length / 2)]!.window_start;
    const ranked = subscriber.messages
      .filter((m) => m.windowStart === windowStart)
      .map((m) => ({ page: m.page, count: m.views }))
      .sort((a, b) => b.count - a.count || (a.page < b.page ? -1 : a.page > b.page ? 1 : 0))
      .slice(0, config.topN);
    expect(ranked).toEqual(topPages(truth, windowStart, config.topN));
    expect(
      subscriber.messages.every((m) => m.windowEnd - m.windowStart === config.windows.hopSizeMs),
    ).toBe(true);
    // The sorted sets agree with what was announced.
    const { pageWindows } = await readResults(config);
    expect(pageWindows.length).toBe(subscriber.messages.length);
  });
});
