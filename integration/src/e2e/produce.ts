import { createProducer } from "@sluice/producer";
import { Kafka, logLevel } from "kafkajs";
import type { GeneratedRecord } from "../generator/generate.js";
import type { UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "../pipeline/config.js";
import { UserEventCodec } from "../pipeline/user-event-codec.js";
import { sleep } from "./processes.js";

/** What {@link produceThroughFaults} sent. */
export interface FaultyProduceSummary {
  sent: number;
  valid: number;
  late: number;
  invalid: number;
  durationMs: number;
}

/**
 * Sends the generator's records at a steady rate while the broker may be
 * restarted: valid and late events through `@sluice/producer` (idempotent;
 * a send waits up to its delivery timeout for the broker to come back), the
 * invalid ones as raw bytes through an idempotent kafkajs producer whose
 * retries outlast a broker restart, so each record lands exactly once.
 * (The producer service's own raw path gives up after kafkajs' default five
 * retries, too few for a broker restart.)
 *
 * @param opts - deployment, records, target rate, progress callback
 * @returns counts of what was sent and acknowledged
 */
export async function produceThroughFaults(opts: {
  config: PipelineConfig;
  records: readonly GeneratedRecord[];
  ratePerSecond: number;
  onProgress?: (sent: number) => void;
}): Promise<FaultyProduceSummary> {
  const { config, records } = opts;
  const t0 = Date.now();
  const kafka = new Kafka({
    clientId: "sluice-e2e-producer",
    brokers: config.kafkaBrokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 200, initialRetryTime: 200, maxRetryTime: 2000 },
  });
  const producer = createProducer<UserEvent>({
    kafka,
    topic: config.topic,
    schema: UserEventCodec,
    key: "user_id",
    eventTime: "ts",
    lingerMs: 20,
    deliveryTimeoutMs: "5m",
    // The producer's default codec, lz4 (lz4-napi), as a deployment runs it.
  });
  const rogue = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await rogue.connect();
  const summary: FaultyProduceSummary = { sent: 0, valid: 0, late: 0, invalid: 0, durationMs: 0 };
  try {
    let inFlight: Promise<unknown>[] = [];
    let raw: Array<{ key: string; value: string }> = [];
    let lastProgress = Date.now();
    const drain = async () => {
      if (raw.length > 0) {
        await rogue.send({ topic: config.topic, messages: raw });
        raw = [];
      }
      await Promise.all(inFlight);
      inFlight = [];
    };
    for (const r of records) {
      if (r.kind === "invalid") raw.push({ key: r.key, value: r.raw! });
      else inFlight.push(producer.send(r.event!));
      summary[r.kind]++;
      summary.sent++;
      if (inFlight.length >= 10_000 || raw.length >= 200) await drain();
      if (summary.sent % 500 === 0) {
        const due = t0 + (summary.sent / opts.ratePerSecond) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      if (opts.onProgress && Date.now() - lastProgress >= 5000) {
        lastProgress = Date.now();
        opts.onProgress(summary.sent);
      }
    }
    await drain();
    await producer.flush();
  } finally {
    await producer.close();
    await rogue.disconnect();
  }
  summary.durationMs = Date.now() - t0;
  return summary;
}
