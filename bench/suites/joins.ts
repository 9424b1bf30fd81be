// `npm run bench -- joins [--events N] [--rounds R]`
// @sluice/windowing stream joins and pattern detection, against the
// tumbling-count job of the windowing benchmark measured in the same run:
//   - window (baseline): N events (12 partitions, 100,000 users), tumbling
//     1-minute count + sum per user, emit final, exactly-once, to a topic;
//   - join: the same N events split into clicks (75%) and purchases (25%)
//     topics, stream–stream left join by user within 1 minute (grace 10 s),
//     exactly-once, to a topic (both topics go through the repartition topic);
//   - pattern: the N events as page views / carts / purchases, cart
//     abandonment (view → cart → no purchase within 5 minutes), exactly-once.
// Each timed from the first record to the commit covering the last one.
// Ratios: ratios.join_vs_window, ratios.pattern_vs_window (events/s over events/s).
// Late records per job and round are reported: a join whose two topics are
// read unevenly can send many records to the late output, which is cheaper.
// Also per job and round: the offsets written to each of its own topics
// (changelog, repartition, output; offsets include transaction markers) and
// the 1-minute load average when it finished.
import diagnostics from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel, type Message } from "kafkajs";
import {
  count,
  createJob,
  type Job,
  pattern,
  sum,
  tumbling,
} from "../../packages/windowing/src/index.js";
import { median, numberArg, trackPeakRss, writeResults } from "./_harness.js";

const N = numberArg("events", 1_000_000);
const ROUNDS = Math.max(3, numberArg("rounds", 3));
const PARTITIONS = 12;
const USERS = 100_000;
const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const kafka = new Kafka({ clientId: "bench-joins", brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const run = `bench_joins_${Date.now().toString(36)}`;
const T0 = Date.UTC(2026, 0, 1);
const TYPES = ["page_view", "page_view", "page_view", "add_to_cart", "add_to_cart", "purchase"];

type Ev = { user_id: string; type: string; amount: number; ts: number };

function event(i: number): Ev {
  // event time advances 10 minutes over the run, so state expires as it goes
  return {
    user_id: `u${(i * 7919) % USERS}`,
    type: TYPES[(i * 31 + Math.floor(i / USERS)) % TYPES.length] as string,
    amount: (i % 9) + 1,
    ts: T0 + Math.floor((i / N) * 600_000),
  };
}

async function produce(route: (i: number) => string): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const batch = 10_000;
  for (let i = 0; i < N; i += batch) {
    const byTopic = new Map<string, Message[]>();
    for (let j = i; j < Math.min(N, i + batch); j++) {
      const e = event(j);
      const t = route(j);
      const list = byTopic.get(t) ?? [];
      list.push({ key: e.user_id, value: JSON.stringify(e) });
      byTopic.set(t, list);
    }
    await producer.sendBatch({
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  }
  await producer.disconnect();
}

const decode = { decode: (b: Buffer) => JSON.parse(b.toString("utf8")) as Ev };

/** Runs one job over the N events; returns events/s from its first record to the commit after its last. */
async function timed(
  kind: "window" | "join" | "pattern",
  build: (app: string, stateDir: string) => Job<Ev, unknown>,
  statefulTopic: (app: string) => string,
): Promise<{ eps: number; late: number; load: number; offsets: Record<string, number> }> {
  const app = `${run}-${kind}-${Math.random().toString(36).slice(2, 8)}`;
  const stateDir = mkdtempSync(path.join(tmpdir(), "bench-joins-"));
  const topic = statefulTopic(app);
  let seen = 0;
  let late = 0;
  let first = 0;
  let last = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const onRecords = (m: unknown) => {
    const msg = m as { applicationId: string; topic: string; count: number };
    if (msg.applicationId !== app) return;
    if (first === 0) first = performance.now();
    if (msg.topic === topic) seen += msg.count;
  };
  const onCommit = (m: unknown) => {
    if ((m as { applicationId: string }).applicationId !== app) return;
    if (seen >= N && last === 0) {
      last = performance.now();
      done();
    }
  };
  const onLate = (m: unknown) => {
    const msg = m as { applicationId: string; count: number };
    if (msg.applicationId === app) late += msg.count;
  };
  diagnostics.subscribe("sluice:job:records", onRecords);
  diagnostics.subscribe("sluice:job:commit", onCommit);
  diagnostics.subscribe("sluice:job:late", onLate);
  const job = build(app, stateDir);
  await job.start();
  // A job that stops making progress fails the run instead of hanging it.
  let lastSeen = -1;
  let lastMove = Date.now();
  const stall = setInterval(() => {
    if (seen !== lastSeen) {
      lastSeen = seen;
      lastMove = Date.now();
    } else if (Date.now() - lastMove > 180_000) {
      clearInterval(stall);
      console.error(`${kind}: no progress for 180 s at ${seen}/${N} records (job ${job.status})`);
      process.exit(1);
    }
  }, 5_000);
  await finished;
  clearInterval(stall);
  await job.stop();
  diagnostics.unsubscribe("sluice:job:records", onRecords);
  diagnostics.unsubscribe("sluice:job:commit", onCommit);
  diagnostics.unsubscribe("sluice:job:late", onLate);
  rmSync(stateDir, { recursive: true, force: true });
  const offsets: Record<string, number> = {};
  for (const t of (await admin.listTopics()).filter((x) => x.startsWith(app)).sort()) {
    const parts = await admin.fetchTopicOffsets(t);
    offsets[t.slice(app.length + 1)] = parts.reduce((a, o) => a + Number(o.high), 0);
  }
  await cleanup(app);
  return { eps: (N / (last - first)) * 1000, late, load: loadavg()[0] as number, offsets };
}

const base = (app: string, stateDir: string, topic: string) => ({
  kafka,
  applicationId: app,
  source: { topic, schema: decode, eventTime: "ts" },
  stateDir,
  guarantee: "exactly-once" as const,
  handleSignals: false,
});

async function cleanup(prefix: string): Promise<void> {
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length) await admin.deleteTopics({ topics }).catch(() => {});
  await admin.deleteGroups([prefix]).catch(() => {});
}

await admin.connect();
const events = `${run}-events`;
const clicks = `${run}-clicks`;
const buys = `${run}-purchases`;
const rss = trackPeakRss();
try {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [events, clicks, buys].map((topic) => ({ topic, numPartitions: PARTITIONS })),
  });
  const p0 = performance.now();
  await produce(() => events);
  await produce((i) => (i % 4 === 3 ? buys : clicks));
  console.log(`produced 2 × ${N} events in ${((performance.now() - p0) / 1000).toFixed(1)} s`);
  const rounds: {
    window: number;
    join: number;
    pattern: number;
    late: { window: number; join: number; pattern: number };
    load: { window: number; join: number; pattern: number };
    offsets: {
      window: Record<string, number>;
      join: Record<string, number>;
      pattern: Record<string, number>;
    };
  }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const w = await timed(
      "window",
      (app, dir) =>
        createJob<Ev>(base(app, dir, events))
          .window(tumbling({ size: "1m" }))
          .aggregate({ events: count(), amount: sum((e: Ev) => e.amount) })
          .to({ topic: `${app}-out` }),
      () => events,
    );
    const j = await timed(
      "join",
      (app, dir) =>
        createJob<Ev>(base(app, dir, clicks))
          .join<Ev>(
            { topic: buys, schema: decode, eventTime: "ts" },
            { within: "1m", grace: "10s", type: "left" },
          )
          .to({ topic: `${app}-out` }),
      (app) => `${app}-repartition`,
    );
    const p = await timed(
      "pattern",
      (app, dir) =>
        createJob<Ev>(base(app, dir, events))
          .match(
            pattern<Ev>({ within: "5m", grace: "10s" })
              .step("view", (e) => e.type === "page_view")
              .step("cart", (e) => e.type === "add_to_cart")
              .notFollowedBy("purchase", (e) => e.type === "purchase"),
          )
          .to({ topic: `${app}-out` }),
      () => events,
    );
    rounds.push({
      window: w.eps,
      join: j.eps,
      pattern: p.eps,
      late: { window: w.late, join: j.late, pattern: p.late },
      load: { window: w.load, join: j.load, pattern: p.load },
      offsets: { window: w.offsets, join: j.offsets, pattern: p.offsets },
    });
    console.log(
      `round ${r + 1}: window ${w.eps.toFixed(0)}/s, join ${j.eps.toFixed(0)}/s, pattern ${p.eps.toFixed(0)}/s, join/window ${(j.eps / w.eps).toFixed(3)}; late records ${w.late}/${j.late}/${p.late}; load ${w.load.toFixed(1)}/${j.load.toFixed(1)}/${p.load.toFixed(1)}`,
    );
    console.log(
      `  offsets written: window ${JSON.stringify(w.offsets)}, join ${JSON.stringify(j.offsets)}, pattern ${JSON.stringify(p.offsets)}`,
    );
  }
  const window = median(rounds.map((r) => r.window));
  const join = median(rounds.map((r) => r.join));
  const pat = median(rounds.map((r) => r.pattern));
  writeResults("joins", {
    config: { events: N, partitions: PARTITIONS, users: USERS, rounds: ROUNDS },
    eventsPerSec: {
      window: Math.round(window),
      join: Math.round(join),
      pattern: Math.round(pat),
    },
    ratios: {
      join_vs_window: Number((join / window).toFixed(3)),
      join_vs_window_per_round: rounds.map((r) => Number((r.join / r.window).toFixed(3))),
      pattern_vs_window: Number((pat / window).toFixed(3)),
    },
    targets: { join_vs_window: 0.5 },
    peakRssMiB: Math.round(rss.stop() / 2 ** 20),
    rounds,
  });
} finally {
  await cleanup(run);
  await admin.disconnect();
}
