import { createProducer } from "@sluice/producer";
import { Kafka, logLevel } from "kafkajs";
import type { GeneratedRecord } from "../generator/generate.js";
import type { UserEvent } from "../generator/user-event.js";
import { kafkaClientConfig, type PipelineConfig } from "../pipeline/config.js";
import { UserEventCodec } from "../pipeline/user-event-codec.js";

/** Options of {@link produceRecords}. */
export interface ProduceOptions {
  config: PipelineConfig;
  /** The generator's records, sent in order. */
  records: readonly GeneratedRecord[];
  /** Target records per second of wall time; unlimited when absent. */
  ratePerSecond?: number;
  /** Called about every second with the records sent so far. */
  onProgress?: (sent: number) => void;
  /** Stops early when aborted. */
  signal?: AbortSignal;
  /** kafkajs log level. @defaultValue logLevel.NOTHING */
  kafkaLogLevel?: logLevel;
}

/** What {@link produceRecords} sent. */
export interface ProduceSummary {
  sent: number;
  valid: number;
  late: number;
  invalid: number;
  /** Partition of each acknowledged valid or late event differs from the generator's: count. */
  partitionMismatches: number;
  durationMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The producer service: sends the generator's events through
 * `@sluice/producer` (validated, keyed by user id, murmur2-partitioned,
 * batched, idempotent) to the source topic. The invalid records stand for a
 * misbehaving upstream that writes raw bytes: they go through a plain kafkajs
 * producer, so they reach the topic and the aggregator's dead-letter path.
 *
 * @param opts - see {@link ProduceOptions}
 * @returns counts of what was sent and acknowledged
 */
export async function produceRecords(opts: ProduceOptions): Promise<ProduceSummary> {
  const { config, records } = opts;
  const t0 = Date.now();
  const kafka = new Kafka({
    ...kafkaClientConfig(config, "sluice-demo-producer"),
    logLevel: opts.kafkaLogLevel ?? logLevel.NOTHING,
  });
  const producer = createProducer<UserEvent>({
    kafka,
    topic: config.topic,
    schema: UserEventCodec,
    key: "user_id",
    eventTime: "ts",
    lingerMs: 20,
  });
  const rogue = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await rogue.connect();
  const summary: ProduceSummary = {
    sent: 0,
    valid: 0,
    late: 0,
    invalid: 0,
    partitionMismatches: 0,
    durationMs: 0,
  };
  try {
    const window = 20_000;
    let inFlight: Promise<unknown>[] = [];
    let rawBatch: Array<{ key: string; value: string }> = [];
    let lastProgress = Date.now();
    for (const r of records) {
      if (opts.signal?.aborted) break;
      if (r.kind === "invalid") {
        rawBatch.push({ key: r.key, value: r.raw! });
        summary.invalid++;
      } else {
        const expected = r.partition;
        inFlight.push(
          producer.send(r.event!).then((res) => {
            if (res.partition !== expected) summary.partitionMismatches++;
          }),
        );
        summary[r.kind]++;
      }
      summary.sent++;
      if (inFlight.length >= window || rawBatch.length >= 1000) {
        if (rawBatch.length > 0) {
          await rogue.send({ topic: config.topic, messages: rawBatch });
          rawBatch = [];
        }
        await Promise.all(inFlight);
        inFlight = [];
      }
      if (opts.ratePerSecond && summary.sent % 500 === 0) {
        const due = t0 + (summary.sent / opts.ratePerSecond) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      if (opts.onProgress && Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        opts.onProgress(summary.sent);
      }
    }
    if (rawBatch.length > 0) await rogue.send({ topic: config.topic, messages: rawBatch });
    await producer.flush();
    await Promise.all(inFlight);
  } finally {
    await producer.close();
    await rogue.disconnect();
  }
  summary.durationMs = Date.now() - t0;
  return summary;
}
