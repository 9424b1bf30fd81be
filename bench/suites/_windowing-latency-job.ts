// The windowing suite's latency job, run in a process of its own (as a
// deployed job would be) so that the event generator and the result reader
// of the suite do not share its event loop.
//   tsx _windowing-latency-job.ts <source topic> <applicationId> <stateDir> <transactionConcurrency> [at-least-once | raw]
// `raw` is the baseline: the same count per user and minute, emitted on
// every change, by hand with kafkajs (eachBatch, an in-memory Map, one
// idempotent producer, results sent before the batch's offsets are
// committed): what a hand-written at-least-once service gets, with no state
// store, changelog or restore.
// Prints "ready" once the job runs; on SIGTERM prints its event-loop delay
// ("eld" and JSON, in ms) and stops (drain, commit, close).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Kafka, logLevel, type Message } from "kafkajs";
import { count, createJob, max, tumbling } from "../../packages/windowing/src/index.js";

type Ev = { user_id: string; amount: number; ts: number; sent?: number };

const [topic, applicationId, stateDir, concurrency, mode] = process.argv.slice(2);
if (!topic || !applicationId || !stateDir || !concurrency) {
  console.error(
    "usage: _windowing-latency-job.ts <topic> <applicationId> <stateDir> <transactionConcurrency> [at-least-once | raw]",
  );
  process.exit(2);
}
const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const kafka = new Kafka({ clientId: "bench-windowing-job", brokers, logLevel: logLevel.NOTHING });
/** A job with start() and stop(): Sluice's, or the raw kafkajs baseline. */
const job = mode === "raw" ? rawJob() : sluiceJob();

function sluiceJob() {
  return createJob<Ev>({
    kafka,
    applicationId,
    source: {
      topic,
      schema: { decode: (b: Buffer) => JSON.parse(b.toString("utf8")) as Ev },
      eventTime: "ts",
    },
    stateDir,
    guarantee: mode === "at-least-once" ? "at-least-once" : "exactly-once",
    handleSignals: false,
    pipelineCommits: true,
    transactionConcurrency: Number(concurrency),
  })
    .window(tumbling({ size: "1m" }))
    .aggregate({ events: count(), sent: max((e: Ev) => e.sent ?? 0) })
    .emit("update")
    .to({ topic: `${applicationId}-out` });
}

function rawJob() {
  const consumer = kafka.consumer({ groupId: applicationId as string, maxWaitTimeInMs: 50 });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  const windows = new Map<string, { events: number; sent: number; n: number }>();
  const out = `${applicationId}-out`;
  return {
    async start() {
      await Promise.all([consumer.connect(), producer.connect()]);
      await consumer.subscribe({ topic: topic as string, fromBeginning: true });
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          const changed = new Map<string, { events: number; sent: number; n: number }>();
          for (const m of batch.messages) {
            const e = JSON.parse((m.value as Buffer).toString("utf8")) as Ev;
            const start = e.ts - (e.ts % 60_000);
            const id = `${e.user_id}@${start}`;
            let w = windows.get(id);
            if (!w) {
              w = { events: 0, sent: 0, n: 0 };
              windows.set(id, w);
            }
            w.events++;
            w.sent = Math.max(w.sent, e.sent ?? 0);
            changed.set(id, w);
          }
          const messages: Message[] = [];
          for (const [id, w] of changed) {
            w.n++;
            const value = { events: w.events, sent: w.sent };
            messages.push({
              key: id.slice(0, id.indexOf("@")),
              value: JSON.stringify({ id: `${id}#${w.n}`, final: false, value }),
            });
          }
          await producer.send({ topic: out, messages });
          const last = batch.messages.at(-1);
          if (last) resolveOffset(last.offset);
        },
      });
    },
    async stop() {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}

// How long the job's event loop was held: a result computed while it is
// held waits, so this is the job's share of the latency tail.
const eld = monitorEventLoopDelay({ resolution: 1 });
let stopping = false;
process.on("SIGTERM", () => {
  if (stopping) return;
  stopping = true;
  eld.disable();
  const ms = (ns: number) => Math.round(ns / 1e5) / 10;
  process.stdout.write(
    `eld ${JSON.stringify({ p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), p999: ms(eld.percentile(99.9)), max: ms(eld.max) })}\n`,
  );
  job.stop().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
});
await job.start();
eld.enable();
console.log("ready");
