// `npm run bench -- state [--keys N] [--rounds R]`
// @sluice/state against raw classic-level and raw kafkajs, measured in the
// same run on the same keys (100-byte values):
//   - cached updates/s: put() of keys already in the store, absorbed by the
//     write-back cache, awaited one by one and through the synchronous
//     putSync(), beside a bare Map.set loop (with and without await) as the
//     floor of the machine (read-modify-write get()+put() is reported too, with
//     the read cache's hit ratio: 64 MiB holds about a third of 1M entries);
//   - checkpoint flush keys/s vs a raw classic-level batch() put of the same
//     keys and encoded values into a fresh database (ratios.checkpoint_vs_raw);
//   - restore records/s from the changelog topic on the broker vs a raw
//     kafkajs consumer reading the same partition (ratios.restore_vs_raw_consume).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ClassicLevel } from "classic-level";
import { Kafka, logLevel } from "kafkajs";
import {
  changelogTopicName,
  createChangelogTopic,
  createKafkaChangelogWriter,
  openStateStore,
  restore,
} from "../../packages/state/src/index.js";
import { median, numberArg, trackPeakRss, writeResults } from "./_harness.js";

const N = numberArg("keys", 1_000_000);
const ROUNDS = Math.max(3, numberArg("rounds", 3));
const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim());
const kafka = new Kafka({ clientId: "sluice-bench-state", brokers, logLevel: logLevel.NOTHING });

const keys = Array.from({ length: N }, (_, i) => `user-${i.toString().padStart(9, "0")}`);
// a JSON string of 98 characters encodes to exactly 100 bytes
const value = (i: number) => `v${i}-`.padEnd(98, "x");

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), "sluice-bench-state-"));
}

const perSec = (count: number, ms: number) => (count / ms) * 1000;

const RESOLVED = Promise.resolve();

async function checkpointRound(): Promise<{
  flush: number;
  updates: number;
  updatesSync: number;
  bareAwait: number;
  bareSync: number;
  rmw: number;
  rmwHitRatio: number;
}> {
  const dir = tmp();
  try {
    // default options (64 MiB read cache), as users get them
    const store = await openStateStore<string>({ dir, name: "bench" });
    const p = store.partition(0);
    for (let i = 0; i < N; i++) await p.put(keys[i]!, value(i));
    let t = performance.now();
    await store.checkpoint({ partition: 0, sourceOffset: N, streamTime: 0 });
    const flush = perSec(N, performance.now() - t);
    // cached updates: absorbed by the write-back cache until the next checkpoint
    const values = Array.from({ length: N }, (_, i) => value(i + 1));
    t = performance.now();
    for (let i = 0; i < N; i++) await p.put(keys[i]!, values[i]!);
    const updates = perSec(N, performance.now() - t);
    await store.checkpoint({ partition: 0, sourceOffset: N, streamTime: 0 });
    // the same updates through the synchronous fast path (no Promise per put)
    t = performance.now();
    for (let i = 0; i < N; i++) p.putSync(keys[i]!, values[i]!);
    const updatesSync = perSec(N, performance.now() - t);
    await store.checkpoint({ partition: 0, sourceOffset: N, streamTime: 0 });
    // floors on this machine, same keys and values: a bare Map.set per update,
    // with and without an await each
    let floor = new Map<string, string>();
    t = performance.now();
    for (let i = 0; i < N; i++) {
      floor.set(keys[i]!, values[i]!);
      await RESOLVED;
    }
    const bareAwait = perSec(N, performance.now() - t);
    floor = new Map<string, string>();
    t = performance.now();
    for (let i = 0; i < N; i++) floor.set(keys[i]!, values[i]!);
    const bareSync = perSec(N, performance.now() - t);
    floor.clear();
    t = performance.now();
    for (let i = 0; i < N; i++) {
      const k = keys[i]!;
      const v = await p.get(k);
      await p.put(k, v === undefined ? "" : values[i]!);
    }
    const rmw = perSec(N, performance.now() - t);
    const stats = await store.stats();
    await store.close();
    return {
      flush,
      updates,
      updatesSync,
      bareAwait,
      bareSync,
      rmw,
      rmwHitRatio: stats.cacheHitRatio,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rawBatchRound(): Promise<number> {
  const dir = tmp();
  try {
    const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, "raw"), {
      keyEncoding: "buffer",
      valueEncoding: "buffer",
    });
    await db.open();
    const t = performance.now();
    const ops: Array<{ type: "put"; key: Buffer; value: Buffer }> = new Array(N);
    for (let i = 0; i < N; i++) {
      ops[i] = {
        type: "put",
        key: Buffer.from(keys[i]!),
        value: Buffer.from(JSON.stringify(value(i))),
      };
    }
    await db.batch(ops);
    const rate = perSec(N, performance.now() - t);
    await db.close();
    return rate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rawConsume(topic: string, partitionEnd: number): Promise<number> {
  const groupId = `sluice-bench-raw-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const consumer = kafka.consumer({
    groupId,
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 32 * 1024 * 1024,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    consumer.on(consumer.events.CRASH, (e) => reject((e.payload as { error: Error }).error));
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) if (m.key) count++;
          if (Number(batch.lastOffset()) + 1 >= partitionEnd) resolve();
        },
      })
      .catch(reject);
  });
  const rate = perSec(count, performance.now() - t);
  await consumer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.disconnect();
  return rate;
}

async function main() {
  const rss = trackPeakRss();
  console.log(`state bench: ${N} keys, ${ROUNDS} rounds`);
  const flush: number[] = [];
  const updates: number[] = [];
  const updatesSync: number[] = [];
  const bareAwait: number[] = [];
  const bareSync: number[] = [];
  const rmw: number[] = [];
  const rmwHit: number[] = [];
  const raw: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // alternate so drift on a shared machine hits both sides alike
    raw.push(await rawBatchRound());
    const c = await checkpointRound();
    flush.push(c.flush);
    updates.push(c.updates);
    updatesSync.push(c.updatesSync);
    bareAwait.push(c.bareAwait);
    bareSync.push(c.bareSync);
    rmw.push(c.rmw);
    rmwHit.push(c.rmwHitRatio);
    console.log(
      `round ${r + 1}: checkpoint ${c.flush.toFixed(0)} keys/s, raw batch ${raw[r]!.toFixed(0)} keys/s, updates ${c.updates.toFixed(0)}/s (putSync ${c.updatesSync.toFixed(0)}/s; bare Map+await ${c.bareAwait.toFixed(0)}/s, bare Map ${c.bareSync.toFixed(0)}/s), get+put ${c.rmw.toFixed(0)}/s`,
    );
  }

  // changelog: produce N entries once, then restore them ROUNDS times
  const topic = changelogTopicName(`bench_${Date.now().toString(36)}`, "state");
  await createChangelogTopic({ kafka, topic, numPartitions: 1 });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const restoreRates: number[] = [];
  const rawConsumeRates: number[] = [];
  let changelogRecords = 0;
  try {
    const srcDir = tmp();
    try {
      const src = await openStateStore<string>({
        dir: srcDir,
        name: "src",
        changelog: createKafkaChangelogWriter({ producer, topic }),
      });
      const p = src.partition(0);
      for (let i = 0; i < N; i++) await p.put(keys[i]!, value(i));
      const t = performance.now();
      changelogRecords = (await src.checkpoint({ partition: 0, sourceOffset: N, streamTime: 0 }))
        .length;
      console.log(
        `changelog: ${changelogRecords} records produced in ${(performance.now() - t).toFixed(0)} ms`,
      );
      await src.close();
    } finally {
      rmSync(srcDir, { recursive: true, force: true });
    }
    for (let r = 0; r < ROUNDS; r++) {
      rawConsumeRates.push(await rawConsume(topic, changelogRecords));
      const dir = tmp();
      try {
        const store = await openStateStore<string>({ dir, name: "restored" });
        const res = await restore({ kafka, topic, partition: 0, store, timeout: "10m" });
        if (res.records !== changelogRecords)
          throw new Error(`restored ${res.records} of ${changelogRecords}`);
        // restore time includes joining the throw-away group; report it as measured
        restoreRates.push(perSec(res.records, res.durationMs));
        const check = await store.partition(0).get(keys[N - 1]!);
        if (check !== value(N - 1)) throw new Error("restored value mismatch");
        await store.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      console.log(
        `restore round ${r + 1}: ${restoreRates[r]!.toFixed(0)} records/s, raw kafkajs consume ${rawConsumeRates[r]!.toFixed(0)} records/s`,
      );
    }
  } finally {
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }

  const m = {
    cached_updates_per_s: median(updates),
    cached_updates_sync_per_s: median(updatesSync),
    bare_map_await_per_s: median(bareAwait),
    bare_map_per_s: median(bareSync),
    cached_get_put_per_s: median(rmw),
    get_put_cache_hit_ratio: median(rmwHit),
    checkpoint_keys_per_s: median(flush),
    raw_batch_keys_per_s: median(raw),
    restore_records_per_s: median(restoreRates),
    raw_consume_records_per_s: median(rawConsumeRates),
  };
  // Rounds are interleaved (baseline, then ours), so the ratio within a round
  // cancels most of the drift of a shared machine: report the median of the
  // per-round ratios, and the ratio of the medians beside it.
  const paired = (ours: number[], base: number[]) => median(ours.map((v, i) => v / base[i]!));
  const checkpointVsRaw = paired(flush, raw);
  const restoreVsRaw = paired(restoreRates, rawConsumeRates);
  writeResults("state", {
    command: ["npm run bench -- state", ...process.argv.slice(2)].join(" "),
    params: { keys: N, valueBytes: 100, rounds: ROUNDS, changelogRecords },
    medians: m,
    ratios: {
      checkpoint_vs_raw: checkpointVsRaw,
      restore_vs_raw_consume: restoreVsRaw,
      checkpoint_vs_raw_of_medians: m.checkpoint_keys_per_s / m.raw_batch_keys_per_s,
      restore_vs_raw_consume_of_medians: m.restore_records_per_s / m.raw_consume_records_per_s,
    },
    targets: {
      checkpoint_vs_raw: { min: 0.8, met: checkpointVsRaw >= 0.8 },
      cached_updates_per_s: { min: 1_000_000, met: m.cached_updates_per_s >= 1_000_000 },
      cached_updates_sync_per_s: {
        min: 1_000_000,
        met: m.cached_updates_sync_per_s >= 1_000_000,
      },
      restore_records_per_s: { min: 100_000, met: m.restore_records_per_s >= 100_000 },
    },
    samples: {
      updates,
      updatesSync,
      bareAwait,
      bareSync,
      rmw,
      flush,
      raw,
      restore: restoreRates,
      rawConsume: rawConsumeRates,
    },
    loadAverage: os.loadavg(),
    peakRssBytes: rss.stop(),
    notes: [
      "raw baseline builds the same keys and JSON-encoded values and writes them with one classic-level batch()",
      "cached updates: `await p.put()` per update (cached_updates_per_s) and the synchronous `p.putSync()` (cached_updates_sync_per_s) of keys already in the store, each followed by a checkpoint outside the timing; bare_map_* time a plain Map.set per update (with and without an await) on the same keys in the same round, the floor of this machine",
      "restore time includes connecting, setting up the throw-away consumer group and writing to LevelDB",
      "ratios are medians of per-round ratios (each round runs baseline and ours back to back); *_of_medians divide the medians",
    ],
  });
}

await main();
