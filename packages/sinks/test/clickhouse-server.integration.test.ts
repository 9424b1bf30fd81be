import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createClickHouseSink,
  type DeadLetter,
  featuresOf,
  type WindowResultLike,
  windowResultRow,
  windowResultTableSql,
} from "../src/index.js";
import { runSinkConformance } from "../src/test.js";
import {
  env,
  hostPort,
  onRetry,
  windowResultFixture as result,
  sleep,
  streamThroughOutage,
  TcpProxy,
  uniqueName,
} from "./helpers.js";

const client: ClickHouseClient = createClient({
  url: env.clickhouseUrl,
  log: { level: ClickHouseLogLevel.OFF },
});
const created: string[] = [];
let features = featuresOf("18.16");

async function rows<T>(query: string): Promise<T[]> {
  return (await client.query({ query, format: "JSONEachRow" })).json<T>();
}

async function windowTable(prefix: string): Promise<string> {
  const table = uniqueName(prefix);
  created.push(table);
  await client.command({ query: windowResultTableSql({ table, features }) });
  return table;
}

beforeAll(async () => {
  const [v] = await rows<{ v: string }>("SELECT version() AS v");
  features = featuresOf(v!.v);
});

afterAll(async () => {
  for (const t of created) await client.command({ query: `DROP TABLE IF EXISTS \`${t}\`` });
  await client.close();
});

let confTable = "";
runSinkConformance<WindowResultLike<{ count: number }>>({
  name: "conformance: ClickHouse server, window results (ReplacingMergeTree, FINAL)",
  makeSink: (hints) =>
    createClickHouseSink({
      url: env.clickhouseUrl,
      table: confTable,
      toRow: windowResultRow,
      ...hints,
    }),
  makeRecords: (n, start) => Array.from({ length: n }, (_, i) => result(start + i)),
  identity: (r) => r.id,
  readBack: async () =>
    (await rows<{ id: string }>(`SELECT id FROM \`${confTable}\` FINAL`)).map((r) => r.id),
  reset: async () => {
    confTable = await windowTable("sinks_conf");
  },
});

describe("ClickHouse sink on the server", () => {
  it("detects the server version and degrades (no dedup token on 18.16)", async () => {
    const table = await windowTable("sinks_ver");
    const sink = createClickHouseSink({ url: env.clickhouseUrl, table, toRow: windowResultRow });
    await sink.write([result(1)]);
    await sink.flush();
    expect(sink.serverFeatures?.version).toBe(features.version);
    expect(sink.serverFeatures?.deduplicationToken).toBe(features.deduplicationToken);
    await sink.close();
    const strict = createClickHouseSink({
      url: env.clickhouseUrl,
      table,
      toRow: windowResultRow,
      deduplication: "require",
    });
    await strict.write([result(2)]);
    if (features.deduplicationToken) {
      await strict.close();
    } else {
      await expect(strict.flush()).rejects.toMatchObject({ code: "SINK_UNSUPPORTED" });
    }
  });

  it("later emissions of a window replace earlier ones (FINAL and argMax agree)", async () => {
    const table = await windowTable("sinks_emit");
    const sink = createClickHouseSink({ url: env.clickhouseUrl, table, toRow: windowResultRow });
    const r0 = result(0, 0);
    const r1 = { ...result(0, 1), value: { count: 42 } };
    await sink.write([r0, result(1, 0)]);
    await sink.flush();
    await sink.write([r1]);
    await sink.close();
    const final = await rows<{ key: string; value: string; emit_seq: number }>(
      `SELECT key, value, emit_seq FROM \`${table}\` FINAL WHERE key = '${r0.key}' ORDER BY window_start`,
    );
    expect(final.map((r) => JSON.parse(r.value).count)).toEqual([42, 2]);
    const argMax = await rows<{ v: string }>(
      `SELECT argMax(value, emit_seq) AS v FROM \`${table}\` WHERE key = '${r0.key}' GROUP BY key, window_start ORDER BY window_start`,
    );
    expect(argMax.map((r) => JSON.parse(r.v).count)).toEqual([42, 2]);
  });

  it("stores hostile values verbatim and refuses hostile table names", async () => {
    const table = await windowTable("sinks_hostile");
    const nasty = [
      "'; DROP TABLE x; --",
      'quote " and \\ backslash',
      "line\nbreak\t{}",
      "`tick`",
      "ünï ✓ 🚀",
      "\u0000nul",
    ];
    const records = nasty.map((key, i) => ({ ...result(i), key, id: `h${i}` }));
    const sink = createClickHouseSink({ url: env.clickhouseUrl, table, toRow: windowResultRow });
    await sink.write(records);
    await sink.close();
    const back = await rows<{ key: string; id: string }>(
      `SELECT key, id FROM \`${table}\` FINAL ORDER BY id`,
    );
    expect(back.map((r) => r.key)).toEqual(nasty);
    for (const bad of ["x`; DROP TABLE t; --", "a b", "1abc", "", "t.x", "a".repeat(200)]) {
      expect(() => createClickHouseSink({ url: env.clickhouseUrl, table: bad })).toThrow(
        expect.objectContaining({ code: "SINK_INVALID_IDENTIFIER" }),
      );
    }
    expect(() => createClickHouseSink({ url: env.clickhouseUrl, table, database: "db;x" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_IDENTIFIER" }),
    );
  });

  it("dead-letters only the rows the server rejects", async () => {
    const table = uniqueName("sinks_dlq");
    created.push(table);
    await client.command({
      query: `CREATE TABLE \`${table}\` (id String, n UInt32) ENGINE = MergeTree ORDER BY id`,
    });
    const letters: DeadLetter<{ id: string; n: unknown }>[] = [];
    const sink = createClickHouseSink<{ id: string; n: unknown }>({
      url: env.clickhouseUrl,
      table,
      deadLetter: (l) => void letters.push(...l),
    });
    const records = Array.from({ length: 20 }, (_, i) => ({
      id: `r${i}`,
      n: i === 13 ? "not a number" : i,
    }));
    await sink.write(records);
    await sink.close();
    const [agg] = await rows<{ c: string; s: string }>(
      `SELECT count() AS c, sum(n) AS s FROM \`${table}\``,
    );
    expect(Number(agg!.c)).toBe(19);
    expect(Number(agg!.s)).toBe(190 - 13);
    expect(letters.map((l) => l.id)).toEqual(["r13"]);
    expect(letters[0]!.code).toMatch(/^CLICKHOUSE_\d+$/);
  });

  it("fails the sink without bisecting once the table stays missing for missingTableRetryMs", async () => {
    const table = uniqueName("sinks_missing");
    const sink = createClickHouseSink({
      url: env.clickhouseUrl,
      table,
      missingTableRetryMs: "1.5s",
      retry: { initialDelayMs: 100, maxDelayMs: 300 },
    });
    const retries = onRetry();
    await sink.write([{ id: "a" }, { id: "b" }]);
    const t0 = Date.now();
    const err = await sink.flush().catch((e: unknown) => e);
    const tookMs = Date.now() - t0;
    retries.stop();
    expect(err).toMatchObject({ code: "SINK_REJECTED", retryable: false });
    const message = (err as Error).message;
    expect(message).toMatch(/\(CLICKHOUSE_60\) after \d+ attempts in \d+ ms: /);
    expect(message).toContain(`table ${table} does not exist on the server: create it`);
    expect(message).toContain("raise missingTableRetryMs (now 1500 ms)");
    expect(tookMs).toBeGreaterThanOrEqual(1_500);
    expect(tookMs).toBeLessThan(10_000);
    // The whole batch was retried, never bisected into single rows.
    expect(retries.seen.length).toBeGreaterThan(2);
    expect(retries.seen.every((m) => m.code === "CLICKHOUSE_60")).toBe(true);
    await expect(sink.close()).rejects.toMatchObject({ code: "SINK_REJECTED" });

    // An unknown database (81) the same way; 0 fails at the first answer.
    const noDb = createClickHouseSink({
      url: env.clickhouseUrl,
      database: uniqueName("sinks_no_db"),
      table,
      missingTableRetryMs: 0,
    });
    await noDb.write([{ id: "a" }]);
    await expect(noDb.flush()).rejects.toMatchObject({
      code: "SINK_REJECTED",
      message: expect.stringMatching(/^clickhouse sink "\w+" failed \(CLICKHOUSE_81\): /),
    });
  });

  it("a table that appears within missingTableRetryMs (a server attaching its tables) gets every row once", async () => {
    const table = uniqueName("sinks_late_table");
    const sink = createClickHouseSink({
      url: env.clickhouseUrl,
      table,
      toRow: windowResultRow,
      retry: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    const retries = onRetry();
    const records = Array.from({ length: 50 }, (_, i) => result(i));
    await sink.write(records);
    const flushed = sink.flush();
    await sleep(2_000);
    created.push(table);
    await client.command({ query: windowResultTableSql({ table, features }) });
    await flushed;
    await sink.close();
    retries.stop();
    expect(retries.seen.length).toBeGreaterThan(0);
    expect(retries.seen.every((m) => m.code === "CLICKHOUSE_60")).toBe(true);
    const back = await rows<{ id: string }>(`SELECT id FROM \`${table}\` FINAL ORDER BY id`);
    expect(back.map((r) => r.id)).toEqual(records.map((r) => r.id).sort());
  });

  it("survives a 15 s server outage: buffers, holds writers back, then counts and sums are exact", async () => {
    const { host, port } = hostPort(env.clickhouseUrl);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    const table = await windowTable("sinks_outage");
    const sink = createClickHouseSink({
      url: `http://${host}:${proxy.port}`,
      table,
      toRow: windowResultRow,
      maxBatchRows: 50,
      maxBufferedRows: 300,
      maxDelayMs: 50,
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
      requestTimeoutMs: "5s",
    });
    try {
      expect((await sink.health()).ok).toBe(true);
      await proxy.stop();
      expect(await sink.health()).toMatchObject({ ok: false });
      await proxy.start();
      const run = await streamThroughOutage({
        sink,
        proxy,
        outageMs: 15_000,
        record: (i) => result(i),
      });
      expect(run.duringOutage).toBeLessThanOrEqual(300 + 10);
      expect(run.backpressure).toBeGreaterThan(0);
      expect(run.retries).toBeGreaterThan(0);
      const [agg] = await rows<{ c: string; s: string }>(
        `SELECT count() AS c, sum(visitParamExtractUInt(value, 'count')) AS s FROM \`${table}\` FINAL`,
      );
      expect(Number(agg!.c)).toBe(run.total);
      expect(Number(agg!.s)).toBe((run.total * (run.total + 1)) / 2);
    } finally {
      await sink.close().catch(() => {});
      await proxy.stop();
    }
  }, 90_000);
});
