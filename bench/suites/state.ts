// `npm run bench -- state [--keys N] [--rounds R] [--rmw-keys M]`
// @sluice/state against raw classic-level and raw kafkajs, measured in the
// same run on the same keys (100-byte values):
//   - cached updates/s: put() of keys already in the store, absorbed by the
//     write-back cache, awaited one by one and through the synchronous
//     putSync(), beside a bare Map.set loop (with and without await) as the
//     floor of the machine. Keys and values are built before any timing, only
//     the update loops are timed (wall clock and process CPU), every phase
//     starts after a full GC on a quiet process, and each store phase is
//     checked to checkpoint exactly the N updated entries. Read-modify-write
//     get()+put() of M keys is reported too, with the read cache's hit ratio
//     (64 MiB holds about a third of 1M entries);
//   - checkpoint flush keys/s vs a raw classic-level batch() put of the same
//     keys and encoded values into a fresh database (ratios.checkpoint_vs_raw);
//   - restore records/s from the changelog topic on the broker vs a raw
//     kafkajs consumer reading the same partition (ratios.restore_vs_raw_consume).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
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
const RMW_KEYS = numberArg("rmw-keys", 100_000);
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

// The values of the timed updates, built once before any timing (and so long
// before it that the garbage collector has moved them out of the young
// generation): the store and the bare-Map floor update the same prebuilt
// keys with the same prebuilt 100-byte values, and only the updates are timed.
const updateValues = Array.from({ length: N }, (_, i) => value(i + 1));

/** Rate of `count` operations over a wall-clock and a process-CPU interval. */
interface Rate {
  wall: number;
  cpu: number;
}

// A full collection on demand, so every timed phase starts with no garbage
// debt from what ran before it (the harness's own arrays, a previous phase's
// Map, the checkpoint's buffers).
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/**
 * Threads of this process, other than the main one, that are running or in
 * uninterruptible I/O (Linux: /proc/self/task/<tid>/stat); undefined elsewhere.
 */
function busyThreads(): number | undefined {
  try {
    let busy = 0;
    for (const tid of readdirSync("/proc/self/task")) {
      if (Number(tid) === process.pid) continue;
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const state = stat[stat.lastIndexOf(")") + 2];
      if (state === "R" || state === "D") busy++;
    }
    return busy;
  } catch {
    return undefined;
  }
}

/**
 * Collects garbage, then waits (at most 60 s) until no other thread of this
 * process has been busy for half a second (elsewhere than Linux: until the
 * process uses under 20% of one CPU over 250 ms). A checkpoint leaves LevelDB
 * compacting on its background thread for seconds; that work belongs to the
 * checkpoint, so it must not be billed to the updates timed after it, nor to
 * the store's phases more than to the bare-Map floor's. (On a loaded machine a
 * starved compaction thread uses little CPU, so CPU use alone cannot tell.)
 */
async function settle(): Promise<void> {
  gc();
  const until = performance.now() + 60_000;
  let quiet = 0;
  while (performance.now() < until && quiet < 5) {
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 100));
    const busy = busyThreads();
    if (busy === undefined) {
      const c = process.cpuUsage(c0);
      quiet = (c.user + c.system) / 1000 < 20 ? quiet + 1 : 0;
    } else {
      quiet = busy === 0 ? quiet + 1 : 0;
    }
  }
}

async function timed(count: number, body: () => void | Promise<void>): Promise<Rate> {
  await settle();
  const c0 = process.cpuUsage();
  const t = performance.now();
  await body();
  const wallMs = performance.now() - t;
  const c = process.cpuUsage(c0);
  return { wall: perSec(count, wallMs), cpu: perSec(count, (c.user + c.system) / 1000) };
}

type Phase = "storeSync" | "storeAwait" | "bareSync" | "bareAwait";
const PHASES: Phase[] = ["storeSync", "storeAwait", "bareSync", "bareAwait"];

interface CheckpointRoundResult {
  flush: number;
  updates: Record<Phase, Rate>;
  rmw: number;
  rmwHitRatio: number;
  loadAverage: number[];
}

async function checkpointRound(round: number): Promise<CheckpointRoundResult> {
  const dir = tmp();
  try {
    // default options (64 MiB read cache), as users get them
    const store = await openStateStore<string>({ dir, name: "bench" });
    const p = store.partition(0);
    for (let i = 0; i < N; i++) p.putSync(keys[i]!, value(i));
    let t = performance.now();
    await store.checkpoint({ partition: 0, sourceOffset: N, streamTime: 0 });
    const flush = perSec(N, performance.now() - t);
    // Cached updates of keys already in the store, absorbed by the write-back
    // cache; each store phase is followed (outside the timing) by a checkpoint
    // that must write exactly the N updated entries, so every phase starts
    // from the same state. The floor: a bare Map.set per update into a fresh
    // Map, the same keys and values. Phases run in a rotated palindrome
    // (ABCDDCBA) so each one meets the machine's drift, the garbage of the
    // previous phase and LevelDB's background compaction equally often.
    const runPhase = async (phase: Phase): Promise<Rate> => {
      let rate: Rate;
      if (phase === "storeSync") {
        rate = await timed(N, () => {
          for (let i = 0; i < N; i++) p.putSync(keys[i]!, updateValues[i]!);
        });
      } else if (phase === "storeAwait") {
        rate = await timed(N, async () => {
          for (let i = 0; i < N; i++) await p.put(keys[i]!, updateValues[i]!);
        });
      } else if (phase === "bareSync") {
        const floor = new Map<string, string>();
        rate = await timed(N, () => {
          for (let i = 0; i < N; i++) floor.set(keys[i]!, updateValues[i]!);
        });
        return rate;
      } else {
        const floor = new Map<string, string>();
        rate = await timed(N, async () => {
          for (let i = 0; i < N; i++) {
            floor.set(keys[i]!, updateValues[i]!);
            await RESOLVED;
          }
        });
        return rate;
      }
      const written = await store.checkpoint({ partition: 0, sourceOffset: N, streamTime: 0 });
      if (written.length !== N + 1)
        throw new Error(`checkpoint wrote ${written.length - 1} entries, ${N} were updated`);
      return rate;
    };
    const order = PHASES.map((_, i) => PHASES[(i + round) % PHASES.length]!);
    const samples = new Map<Phase, Rate[]>(PHASES.map((ph) => [ph, []]));
    for (const phase of [...order, ...[...order].reverse()]) {
      samples.get(phase)!.push(await runPhase(phase));
    }
    const mean = (rs: Rate[]): Rate => ({
      wall: rs.reduce((a, r) => a + r.wall, 0) / rs.length,
      cpu: rs.reduce((a, r) => a + r.cpu, 0) / rs.length,
    });
    const updates = Object.fromEntries(PHASES.map((ph) => [ph, mean(samples.get(ph)!)])) as Record<
      Phase,
      Rate
    >;
    const loadAverage = os.loadavg();
    if ((await p.get(keys[N - 1]!)) !== updateValues[N - 1])
      throw new Error("updated value not read back");
    // read-modify-write of keys not read before (the read cache holds the
    // last checkpoint's most recent third, so most reads go to disk)
    const rmwKeys = Math.min(N, RMW_KEYS);
    t = performance.now();
    for (let i = 0; i < rmwKeys; i++) {
      const k = keys[i]!;
      const v = await p.get(k);
      await p.put(k, v === undefined ? "" : value(i));
    }
    const rmw = perSec(rmwKeys, performance.now() - t);
    const stats = await store.stats();
    await store.close();
    return { flush, updates, rmw, rmwHitRatio: stats.cacheHitRatio, loadAverage };
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
  const upd: Record<Phase, Rate[]> = { storeSync: [], storeAwait: [], bareSync: [], bareAwait: [] };
  const rmw: number[] = [];
  const rmwHit: number[] = [];
  const raw: number[] = [];
  const roundLoad: number[][] = [];
  const f = (x: number) => `${(x / 1000).toFixed(0)}k`;
  for (let r = 0; r < ROUNDS; r++) {
    // alternate so drift on a shared machine hits both sides alike
    raw.push(await rawBatchRound());
    const c = await checkpointRound(r);
    flush.push(c.flush);
    for (const ph of PHASES) upd[ph].push(c.updates[ph]);
    rmw.push(c.rmw);
    rmwHit.push(c.rmwHitRatio);
    roundLoad.push(c.loadAverage);
    const u = c.updates;
    console.log(
      `round ${r + 1} (load ${c.loadAverage.map((l) => l.toFixed(1)).join(" ")}): checkpoint ${c.flush.toFixed(0)} keys/s, raw batch ${raw[r]!.toFixed(0)} keys/s; updates/s wall (cpu): putSync ${f(u.storeSync.wall)} (${f(u.storeSync.cpu)}), await put ${f(u.storeAwait.wall)} (${f(u.storeAwait.cpu)}), bare Map ${f(u.bareSync.wall)} (${f(u.bareSync.cpu)}), bare Map+await ${f(u.bareAwait.wall)} (${f(u.bareAwait.cpu)}); get+put ${c.rmw.toFixed(0)}/s`,
    );
  }
  const wall = (ph: Phase) => upd[ph].map((x) => x.wall);
  const cpu = (ph: Phase) => upd[ph].map((x) => x.cpu);
  const updates = wall("storeAwait");
  const updatesSync = wall("storeSync");
  const bareAwait = wall("bareAwait");
  const bareSync = wall("bareSync");

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
    cached_updates_per_cpu_s: median(cpu("storeAwait")),
    cached_updates_sync_per_cpu_s: median(cpu("storeSync")),
    bare_map_await_per_cpu_s: median(cpu("bareAwait")),
    bare_map_per_cpu_s: median(cpu("bareSync")),
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
  const syncVsBare = paired(updatesSync, bareSync);
  const awaitVsBare = paired(updates, bareAwait);
  writeResults("state", {
    command: ["npm run bench -- state", ...process.argv.slice(2)].join(" "),
    params: {
      keys: N,
      valueBytes: 100,
      rounds: ROUNDS,
      changelogRecords,
      getPutKeys: Math.min(N, RMW_KEYS),
    },
    medians: m,
    ratios: {
      checkpoint_vs_raw: checkpointVsRaw,
      restore_vs_raw_consume: restoreVsRaw,
      cached_updates_sync_vs_bare_map: syncVsBare,
      cached_updates_vs_bare_map_await: awaitVsBare,
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
      updatesCpu: cpu("storeAwait"),
      updatesSyncCpu: cpu("storeSync"),
      bareAwaitCpu: cpu("bareAwait"),
      bareSyncCpu: cpu("bareSync"),
      rmw,
      flush,
      raw,
      restore: restoreRates,
      rawConsume: rawConsumeRates,
    },
    loadAverage: os.loadavg(),
    roundLoadAverages: roundLoad,
    peakRssBytes: rss.stop(),
    notes: [
      "raw baseline builds the same keys and JSON-encoded values and writes them with one classic-level batch()",
      "cached updates: `await p.put()` per update (cached_updates_per_s, the headline) and the synchronous `p.putSync()` (cached_updates_sync_per_s) of the N keys already in the store, with 100-byte values built before any timing; only the update loop is timed, and each store phase is followed, outside the timing, by a checkpoint that must write exactly the N updated entries; bare_map_* time a plain Map.set per update into a fresh Map (with and without an await each) on the same keys and values in the same round, the floor of this machine",
      "update phases run in a rotated palindrome per round (each phase twice, the round's figure is their mean); *_per_s are wall-clock rates, *_per_cpu_s divide by the process's CPU time (all threads, LevelDB's background compaction included), which a loaded machine disturbs less; *_vs_bare_map are medians of per-round ratios",
      "get+put: read-modify-write of the first getPutKeys keys (not read before, so mostly LevelDB reads: the read cache holds the last checkpoint's most recent third)",
      "restore time includes connecting, setting up the throw-away consumer group and writing to LevelDB",
      "ratios are medians of per-round ratios (each round runs baseline and ours back to back); *_of_medians divide the medians",
    ],
  });
}

await main();
