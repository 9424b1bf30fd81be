// The producer service against the real broker: every generated record lands
// on the partition the generator computed (murmur2, as the jobs' stream time
// tracking assumes), counts per partition are exact, and the service's
// observability server exports the producer metrics.
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { uniqueName } from "../src/env.js";
import { generateEvents } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { setUpPipeline, tearDownPipeline } from "../src/pipeline/setup.js";
import { startServiceObservability } from "../src/services/observe.js";
import { produceRecords } from "../src/services/producer-service.js";

const config = pipelineConfig(uniqueName("it_prod"), { partitions: 6 });

describe("produceRecords (producer service)", () => {
  afterAll(async () => {
    await tearDownPipeline(config);
  });

  it("sends every record to its generator-computed partition and exports metrics", async () => {
    await setUpPipeline(config);
    const obs = await startServiceObservability({ port: 0, requireJob: false });
    const g = generateEvents({ count: 5_000, seed: 8, partitions: 6, invalidFraction: 0.01 });
    try {
      const summary = await produceRecords({ config, records: g.records });
      const kinds = { valid: 0, late: 0, invalid: 0 };
      for (const r of g.records) kinds[r.kind]++;
      expect(summary).toMatchObject({ sent: 5_000, ...kinds, partitionMismatches: 0 });

      const admin = new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(config.topic);
      await admin.disconnect();
      const expected = new Array(6).fill(0);
      for (const r of g.records) expected[r.partition]++;
      const actual = new Array(6).fill(0);
      for (const o of offsets) actual[o.partition] = Number(o.high) - Number(o.low);
      expect(actual).toEqual(expected);

      const metrics = await (await fetch(`${obs.url}/metrics`)).text();
      const sent = metrics
        .split("\n")
        .filter((l) => l.startsWith("sluice_producer_events_total") && l.includes(config.topic))
        .map((l) => Number(l.split(" ").at(-1)));
      expect(sent.reduce((a, b) => a + b, 0)).toBe(kinds.valid + kinds.late);
      expect((await fetch(`${obs.url}/healthz`)).status).toBe(200);
    } finally {
      await obs.close();
    }
  });
});
