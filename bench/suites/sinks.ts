// Sinks benchmark, in one run on the local stack:
//   ClickHouse server — rows/s of `createClickHouseSink` (write in chunks of
//     1,000, flush) against raw `@clickhouse/client` `insert` of the identical
//     pre-built 10,000-row batches (JSONEachRow), each round on a fresh table.
//     ratios.clickhouse_vs_raw, target ≥ 0.85.
//   Redis — ops/s of `createRedisSink` (counter mode, Lua fencing per partition)
//     against a raw ioredis pipeline of the same INCRBY commands, 1,000 per
//     pipeline. ratios.redis_vs_raw, target ≥ 0.8.
// Rounds alternate raw and sink; medians of ≥ 3 rounds.
// `npm run bench -- sinks [--rows N] [--rounds R]`
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { createClickHouseSink, createRedisSink } from "../../packages/sinks/src/index.js";
import { median, numberArg, trackPeakRss, writeResults } from "./_harness.js";

const rows = Math.round(
  process.argv.includes("--events") ? numberArg("events", 200_000) : numberArg("rows", 200_000),
);
const redisOps = Math.min(rows, 200_000);
const rounds = Math.max(3, Math.round(numberArg("rounds", 3)));
const batchRows = 10_000;
const partitions = 12;
const clickhouseUrl = process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const redisUrl = process.env.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379";
const runId = `${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;

interface Row {
  id: string;
  user_id: string;
  event_type: string;
  ts: number;
  amount: number;
  partition: number;
  offset: number;
}

const types = ["page_view", "click", "add_to_cart", "purchase"];
const records: Row[] = Array.from({ length: rows }, (_, i) => ({
  id: `p${i % partitions}:${Math.floor(i / partitions)}`,
  user_id: `user-${(i * 7919) % 100_000}`,
  event_type: types[i % 4]!,
  ts: 1_767_225_600_000 + i * 10,
  amount: (i % 1000) / 10,
  partition: i % partitions,
  offset: Math.floor(i / partitions),
}));
const batches: Row[][] = [];
for (let i = 0; i < rows; i += batchRows) batches.push(records.slice(i, i + batchRows));

const client = createClient({
  url: clickhouseUrl,
  keep_alive: { enabled: true, idle_socket_ttl: 2000 },
  log: { level: ClickHouseLogLevel.OFF },
});
const tables: string[] = [];

async function freshTable(label: string, round: number): Promise<string> {
  const table = `bench_sinks_${label}_${runId}_${round < 0 ? "warm" : round}`;
  tables.push(table);
  await client.command({
    query: `CREATE TABLE ${table} (id String, user_id String, event_type String, ts UInt64, amount Float64, partition UInt32, offset UInt64) ENGINE = MergeTree ORDER BY (event_type, user_id, ts)`,
  });
  return table;
}

async function countRows(table: string): Promise<number> {
  const rs = await client.query({
    query: `SELECT count() AS c FROM ${table}`,
    format: "JSONEachRow",
  });
  const [r] = await rs.json<{ c: string }>();
  return Number(r!.c);
}

async function clickhouseRaw(round: number): Promise<number> {
  const table = await freshTable("raw", round);
  const t0 = performance.now();
  for (const b of batches) await client.insert({ table, values: b, format: "JSONEachRow" });
  const secs = (performance.now() - t0) / 1000;
  if ((await countRows(table)) !== rows) throw new Error("raw insert lost rows");
  return rows / secs;
}

async function clickhouseSink(round: number): Promise<number> {
  const table = await freshTable("sink", round);
  const sink = createClickHouseSink<Row>({
    client,
    table,
    maxBatchRows: batchRows,
    maxBufferedRows: 50_000,
  });
  const t0 = performance.now();
  for (let i = 0; i < rows; i += 1000) await sink.write(records.slice(i, i + 1000));
  await sink.flush();
  const secs = (performance.now() - t0) / 1000;
  await sink.close();
  if ((await countRows(table)) !== rows) throw new Error("sink lost rows");
  return rows / secs;
}

const redis = new Redis(redisUrl);
const redisPrefixes: string[] = [];

async function cleanRedis(prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
}

const redisRecords = records.slice(0, redisOps);
const counterKey = (r: Row) => `${r.event_type}:${r.user_id.slice(-2)}`;

async function redisRaw(round: number): Promise<number> {
  const prefix = `bench_sinks_raw_${runId}_${round}:`;
  redisPrefixes.push(prefix);
  const t0 = performance.now();
  for (let i = 0; i < redisOps; i += 1000) {
    const p = redis.pipeline();
    for (const r of redisRecords.slice(i, i + 1000)) p.incrby(`${prefix}${counterKey(r)}`, 1);
    await p.exec();
  }
  return redisOps / ((performance.now() - t0) / 1000);
}

async function redisSink(round: number): Promise<number> {
  const prefix = `bench_sinks_sink_${runId}_${round}:`;
  redisPrefixes.push(prefix);
  const sink = createRedisSink<Row>({
    redis,
    keyPrefix: prefix,
    write: "counter",
    key: counterKey,
    amount: () => 1,
    maxBatchRows: 1000,
    maxBufferedRows: 20_000,
  });
  const t0 = performance.now();
  for (let i = 0; i < redisOps; i += 1000) await sink.write(redisRecords.slice(i, i + 1000));
  await sink.flush();
  const rate = redisOps / ((performance.now() - t0) / 1000);
  await sink.close();
  return rate;
}

async function checkRedisEqual(round: number): Promise<void> {
  const a = `bench_sinks_raw_${runId}_${round}:`;
  const b = `bench_sinks_sink_${runId}_${round}:`;
  const keys = await redis.keys(`${a}*`);
  for (const k of keys.slice(0, 50)) {
    const other = `${b}${k.slice(a.length)}`;
    if ((await redis.get(k)) !== (await redis.get(other)))
      throw new Error(`redis mismatch at ${other}`);
  }
}

const rss = trackPeakRss();
const ch = { raw: [] as number[], sink: [] as number[] };
const rd = { raw: [] as number[], sink: [] as number[] };
try {
  await clickhouseRaw(-1); // warm-up (a "warm" table): connections, JIT
  await clickhouseSink(-1);
  for (let round = 0; round < rounds; round++) {
    ch.raw.push(await clickhouseRaw(round));
    ch.sink.push(await clickhouseSink(round));
    rd.raw.push(await redisRaw(round));
    rd.sink.push(await redisSink(round));
    await checkRedisEqual(round);
    console.log(
      `round ${round + 1}: clickhouse raw ${ch.raw[round]!.toFixed(0)} rows/s, sink ${ch.sink[round]!.toFixed(0)} rows/s; redis raw ${rd.raw[round]!.toFixed(0)} ops/s, sink ${rd.sink[round]!.toFixed(0)} ops/s`,
    );
  }
} finally {
  for (const t of tables) await client.command({ query: `DROP TABLE IF EXISTS ${t}` });
  for (const p of redisPrefixes) await cleanRedis(p);
  await client.close();
  await redis.quit();
}
const peakRss = rss.stop();
const chRaw = median(ch.raw);
const chSink = median(ch.sink);
const rdRaw = median(rd.raw);
const rdSink = median(rd.sink);
writeResults("sinks", {
  command: `npm run bench -- sinks --rows ${rows} --rounds ${rounds}`,
  rows,
  redisOps,
  rounds,
  clickhouse: {
    server: "local ClickHouse server (HTTP)",
    batchRows,
    rawRowsPerSec: Math.round(chRaw),
    sinkRowsPerSec: Math.round(chSink),
    rounds: { raw: ch.raw.map(Math.round), sink: ch.sink.map(Math.round) },
  },
  redis: {
    pipelineOps: 1000,
    partitions,
    rawOpsPerSec: Math.round(rdRaw),
    sinkOpsPerSec: Math.round(rdSink),
    rounds: { raw: rd.raw.map(Math.round), sink: rd.sink.map(Math.round) },
  },
  ratios: {
    clickhouse_vs_raw: Number((chSink / chRaw).toFixed(3)),
    redis_vs_raw: Number((rdSink / rdRaw).toFixed(3)),
  },
  targets: { clickhouse_vs_raw: 0.85, redis_vs_raw: 0.8 },
  peakRssMiB: Math.round(peakRss / 2 ** 20),
});
