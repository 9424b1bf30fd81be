// The windowing suite's latency job, run in a process of its own (as a
// deployed job would be) so that the event generator and the result reader
// of the suite do not share its event loop.
//   tsx _windowing-latency-job.ts <source topic> <applicationId> <stateDir> <commitIntervalMs, 0 = the default> [at-least-once | raw | txn]
// `raw` is the baseline: the same count per user and minute, emitted on
// every change, by hand with kafkajs (eachBatch, an in-memory Map, one
// idempotent producer, results sent before the batch's offsets are
// committed): what a hand-written at-least-once service gets, with no state
// store, changelog or restore.
// `txn` is a probe, not a baseline: the same count by hand, with one
// transaction per commit for all the member's partitions, commits back to
// back (the next starts as soon as the previous ends, if anything is
// pending), carrying the results, one changelog-like record per changed
// window and the consumer offsets, on one transactional producer made by
// @sluice/producer's createKafkaProducer. It is the shape of the job's
// exactly-once commits (one transaction per commit, KIP-447), minus what
// makes them safe: no state store, no restore, no fencing by generation.
// Prints "ready" once the job runs; on SIGTERM prints its event-loop delay
// ("eld" and JSON, in ms), and for a Sluice job its commits ("commits" and
// JSON: count, duration and gap between commit ends, p50 / p99 in ms), and
// stops (drain, commit, close).
import diagnostics from "node:diagnostics_channel";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Kafka, logLevel, type Message, type Producer } from "kafkajs";
import { createKafkaProducer } from "../../packages/producer/src/index.js";
import { count, createJob, max, tumbling } from "../../packages/windowing/src/index.js";

type Ev = { user_id: string; amount: number; ts: number; sent?: number };

const [topic, applicationId, stateDir, commitMs, mode] = process.argv.slice(2);
if (!topic || !applicationId || !stateDir || !commitMs) {
  console.error(
    "usage: _windowing-latency-job.ts <topic> <applicationId> <stateDir> <commitIntervalMs, 0 = the default> [at-least-once | raw | txn]",
  );
  process.exit(2);
}
const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const kafka = new Kafka({ clientId: "bench-windowing-job", brokers, logLevel: logLevel.NOTHING });
/** A job with start() and stop(): Sluice's, or the raw kafkajs baseline. */
const job = mode === "raw" ? rawJob() : mode === "txn" ? txnJob() : sluiceJob();

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
    ...(Number(commitMs) > 0 ? { commitIntervalMs: Number(commitMs) } : {}),
  })
    .window(tumbling({ size: "1m" }))
    .aggregate({ events: count(), sent: max((e: Ev) => e.sent ?? 0) })
    .emit("update")
    .to({ topic: `${applicationId}-out` });
}

type Window = { events: number; sent: number; n: number };

/**
 * Counts a batch into `windows`; one result per window it changed, made by
 * `emit` from the result message (and the window's id and value, which only
 * the txn probe keeps).
 */
function countAndEmit<T>(
  windows: Map<string, Window>,
  records: { value: Buffer | null }[],
  emit: (result: Message, id: string, value: { events: number; sent: number }) => T,
): T[] {
  const changed = new Map<string, Window>();
  for (const m of records) {
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
  return [...changed].map(([id, w]) => {
    w.n++;
    const value = { events: w.events, sent: w.sent };
    const key = id.slice(0, id.indexOf("@"));
    return emit(
      { key, value: JSON.stringify({ id: `${id}#${w.n}`, final: false, value }) },
      id,
      value,
    );
  });
}

function txnJob() {
  const consumer = kafka.consumer({ groupId: applicationId as string, maxWaitTimeInMs: 50 });
  const producer: Producer = createKafkaProducer({
    kafka,
    config: { transactionalId: `${applicationId}-txn`, idempotent: true, maxInFlightRequests: 1 },
  });
  const windows = new Map<string, Window>();
  const out = `${applicationId}-out`;
  const changelog = `${applicationId}-changelog`;
  let pending: { topic: string; messages: Message[] }[] = [];
  let offsets = new Map<number, string>();
  let running = true;
  let commits: Promise<void> | undefined;
  const commitLoop = async () => {
    while (running || pending.length > 0) {
      if (pending.length === 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const topicMessages = pending;
      const partitions = [...offsets].map(([partition, offset]) => ({ partition, offset }));
      pending = [];
      offsets = new Map();
      const t = await producer.transaction();
      await t.sendBatch({ topicMessages });
      await t.sendOffsets({
        consumerGroupId: applicationId as string,
        topics: [{ topic: topic as string, partitions }],
      });
      await t.commit();
    }
  };
  return {
    async start() {
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: changelog, numPartitions: 12 }],
      });
      await admin.disconnect();
      await Promise.all([consumer.connect(), producer.connect()]);
      await consumer.subscribe({ topic: topic as string, fromBeginning: true });
      commits = commitLoop();
      commits.catch((err) => {
        console.error(err);
        process.exit(1);
      });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const emitted = countAndEmit(windows, batch.messages, (result, id, value) => ({
            id,
            value,
            result,
          }));
          pending.push(
            { topic: out, messages: emitted.map((r) => r.result) },
            {
              topic: changelog,
              messages: emitted.map((r) => ({
                key: r.id,
                value: JSON.stringify(r.value),
                partition: batch.partition,
              })),
            },
          );
          const last = batch.messages.at(-1);
          if (last) offsets.set(batch.partition, String(BigInt(last.offset) + 1n));
        },
      });
    },
    async stop() {
      await consumer.disconnect();
      running = false;
      await commits;
      await producer.disconnect();
    },
  };
}

function rawJob() {
  const consumer = kafka.consumer({ groupId: applicationId as string, maxWaitTimeInMs: 50 });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  const windows = new Map<string, Window>();
  const out = `${applicationId}-out`;
  return {
    async start() {
      await Promise.all([consumer.connect(), producer.connect()]);
      await consumer.subscribe({ topic: topic as string, fromBeginning: true });
      await consumer.run({
        eachBatch: async ({ batch, resolveOffset }) => {
          const messages = countAndEmit(windows, batch.messages, (result) => result);
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
  const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.floor(a.length * p)];
  if (commits.durations.length > 0) {
    const { durations: d, gaps: g } = commits;
    process.stdout.write(
      `commits ${JSON.stringify({ count: d.length, durationP50: q(d, 0.5), durationP99: q(d, 0.99), gapP50: q(g, 0.5), gapP99: q(g, 0.99) })}\n`,
    );
  }
  job.stop().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
});
// A Sluice job's commits: how long each took, and the time between the ends of two.
const commits = { durations: [] as number[], gaps: [] as number[], last: 0 };
diagnostics.subscribe("sluice:job:commit", (m) => {
  const c = m as { applicationId: string; durationMs: number };
  if (c.applicationId !== applicationId || stopping) return;
  const now = Date.now();
  commits.durations.push(c.durationMs);
  if (commits.last > 0) commits.gaps.push(now - commits.last);
  commits.last = now;
});
await job.start();
eld.enable();
console.log("ready");
