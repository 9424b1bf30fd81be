import diagnostics from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Session } from "chdb";
import { afterAll, describe, expect, it } from "vitest";
import {
  type ClickHouseSinkOptions,
  createClickHouseSink,
  eventTableSql,
  featuresOf,
  fromChdbSession,
  schemaColumns,
  windowResultRow,
  windowResultTableSql,
} from "../src/index.js";
import { runSinkConformance } from "../src/test.js";
import { uniqueName } from "./helpers.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "sluice-sinks-chdb-"));
const session = new Session(dir);
const exec = fromChdbSession(session);

afterAll(() => {
  session.close();
  rmSync(dir, { recursive: true, force: true });
});

async function rows<T>(sql: string): Promise<T[]> {
  return exec.queryRows<T>(sql);
}

const UserEvent = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  properties: {
    event_id: { type: "string", format: "uuid" },
    user_id: { type: "string" },
    event_type: { enum: ["click", "view", "purchase"] },
    ts: { type: "string", format: "date-time" },
    amount: { type: "number" },
    count: { type: "integer", minimum: 0 },
    referrer: { type: ["string", "null"] },
    tags: { type: "array", items: { type: "string" } },
    props: { type: "object" },
    vip: { type: "boolean" },
  },
  required: ["event_id", "user_id", "event_type", "ts", "count", "referrer"],
} as const;

interface Ev {
  event_id: string;
  user_id: string;
  event_type: "click" | "view" | "purchase";
  ts: string;
  count: number;
  referrer: string | null;
  amount?: number;
  tags?: string[];
  props?: Record<string, unknown>;
  vip?: boolean;
  partition: number;
  offset: number;
}

// Recent event times: the table's hot-tier TTL drops rows older than 7 days on insert.
const DAY = 86_400_000;
const BASE = Math.floor(Date.now() / DAY) * DAY - 2 * DAY;

function ev(i: number): Ev {
  return {
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    user_id: `u${i % 7}`,
    event_type: (["click", "view", "purchase"] as const)[i % 3]!,
    ts: new Date(BASE + (i % 3) * DAY + 36_000_000 + (i % 1000)).toISOString(),
    count: i,
    referrer: i % 2 ? null : "search",
    ...(i % 4 === 0 ? { amount: i / 4, tags: ["a", "b"], props: { k: i }, vip: true } : {}),
    partition: i % 2,
    offset: i,
  };
}

const toRow = ({ partition: _p, offset: _o, ...row }: Ev) => row;

function evSink(table: string, extra: Partial<ClickHouseSinkOptions<Ev>> = {}) {
  return createClickHouseSink<Ev>({
    chdb: session,
    table,
    toRow,
    identity: (e) => e.event_id,
    insertSettings: { date_time_input_format: "best_effort" },
    ...extra,
  });
}

async function eventTable(): Promise<string> {
  const table = uniqueName("sinks_ev");
  await exec.command(eventTableSql({ table, schema: UserEvent }));
  return table;
}

let confTable = "";
runSinkConformance<Ev>({
  name: "conformance: chDB, raw events in MergeTree with dedup tokens (no FINAL)",
  makeSink: (hints) =>
    createClickHouseSink({
      chdb: session,
      table: confTable,
      toRow,
      identity: (e) => e.event_id,
      insertSettings: { date_time_input_format: "best_effort" },
      ...hints,
    }),
  makeRecords: (n, start) => Array.from({ length: n }, (_, i) => ev(start + i)),
  identity: (e) => e.event_id,
  readBack: async () =>
    (await rows<{ event_id: string }>(`SELECT event_id FROM ${confTable}`)).map((r) => r.event_id),
  reset: async () => {
    confTable = await eventTable();
  },
});

describe("ClickHouse sink on chDB (current engine)", () => {
  it("DDL from the JSON Schema: day partitions, ORDER BY, TTL, LowCardinality, DateTime64, Nullable only where optional", async () => {
    const table = await eventTable();
    const cols = await rows<{ name: string; type: string }>(
      `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${table}' ORDER BY position`,
    );
    expect(Object.fromEntries(cols.map((c) => [c.name, c.type]))).toEqual({
      event_id: "String",
      user_id: "String",
      event_type: "LowCardinality(String)",
      ts: "DateTime64(3, 'UTC')",
      amount: "Nullable(Float64)",
      count: "UInt64",
      referrer: "Nullable(String)",
      tags: "Array(String)",
      props: "Nullable(String)",
      vip: "Nullable(Bool)",
    });
    const [t] = await rows<{
      partition_key: string;
      sorting_key: string;
      create_table_query: string;
    }>(
      `SELECT partition_key, sorting_key, create_table_query FROM system.tables WHERE database = currentDatabase() AND name = '${table}'`,
    );
    expect(t!.partition_key).toBe("toDate(ts)");
    expect(t!.sorting_key).toBe("event_type, user_id, ts");
    expect(t!.create_table_query).toMatch(/TTL toDateTime\(ts\) \+ toIntervalSecond\(604800\)/);
    expect(t!.create_table_query).toMatch(/non_replicated_deduplication_window = 1000/);
  });

  it("cold-volume TTL and old-server degradation in the generated DDL", () => {
    const cold = eventTableSql({
      table: "events",
      schema: UserEvent,
      hotTtl: "3d",
      coldVolume: "cold",
      storagePolicy: "hot_cold",
    });
    expect(cold).toContain("TTL toDateTime(`ts`) + INTERVAL 259200 SECOND TO VOLUME 'cold'");
    expect(cold).toContain("storage_policy = 'hot_cold'");
    const old = featuresOf("18.16.1");
    const oldSql = eventTableSql({ table: "events", schema: UserEvent, features: old });
    expect(oldSql).not.toMatch(/TTL|LowCardinality|DateTime64|Bool|deduplication_window/);
    expect(schemaColumns(UserEvent, old)).toContainEqual(["ts", "DateTime('UTC')"]);
    expect(() =>
      eventTableSql({
        table: "e",
        schema: { type: "object", properties: { "a`b": { type: "string" } } },
      }),
    ).toThrow(expect.objectContaining({ code: "SINK_INVALID_IDENTIFIER" }));
    expect(() => eventTableSql({ table: "e", schema: UserEvent, userColumn: "amount" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
  });

  it("stores rows with their types and reads date-times back exactly", async () => {
    const table = await eventTable();
    const sink = evSink(table);
    await sink.write([ev(4), ev(5)]);
    await sink.close();
    const back = await rows<Record<string, unknown>>(
      `SELECT event_id, toUnixTimestamp64Milli(ts) AS ms, amount, referrer, tags, vip FROM ${table} ORDER BY event_id`,
    );
    expect(back).toEqual([
      {
        event_id: ev(4).event_id,
        ms: Date.parse(ev(4).ts),
        amount: 1,
        referrer: "search",
        tags: ["a", "b"],
        vip: true,
      },
      {
        event_id: ev(5).event_id,
        ms: Date.parse(ev(5).ts),
        amount: null,
        referrer: null,
        tags: [],
        vip: null,
      },
    ]);
  });

  it("replaceBy: events re-sent in differently cut batches collapse with FINAL", async () => {
    const table = uniqueName("sinks_repl");
    await exec.command(eventTableSql({ table, schema: UserEvent, replaceBy: "event_id" }));
    // A background merge may collapse the duplicates before the raw count
    // below; stop merges so that count sees what was written.
    await exec.command(`SYSTEM STOP MERGES ${table}`);
    const records = Array.from({ length: 30 }, (_, i) => ev(i));
    const a = evSink(table, { maxBatchRows: 7 });
    await a.write(records.slice(0, 20));
    await a.close();
    const b = evSink(table, { maxBatchRows: 11 }); // a crash replay, cut differently
    await b.write(records);
    await b.close();
    const [raw] = await rows<{ c: number }>(`SELECT count() AS c FROM ${table}`);
    expect(raw!.c).toBeGreaterThan(30); // the tokens could not match
    const [final] = await rows<{ c: number; s: number }>(
      `SELECT count() AS c, sum(count) AS s FROM ${table} FINAL`,
    );
    expect(final).toEqual({ c: 30, s: 435 });
    const [t] = await rows<{ engine: string; sorting_key: string }>(
      `SELECT engine, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = '${table}'`,
    );
    expect(t).toEqual({
      engine: "ReplacingMergeTree",
      sorting_key: "event_type, user_id, ts, event_id",
    });
  });

  it("the hot-tier TTL drops events older than hotTtl", async () => {
    const table = await eventTable();
    const sink = evSink(table);
    const old = { ...ev(1), ts: new Date(BASE - 10 * DAY).toISOString() };
    await sink.write([old, ev(2)]);
    await sink.close();
    await exec.command(`OPTIMIZE TABLE ${table} FINAL`);
    const back = await rows<{ event_id: string }>(`SELECT event_id FROM ${table}`);
    expect(back.map((r) => r.event_id)).toEqual([ev(2).event_id]);
  });

  it("a retried batch is deduplicated by its token even when its bytes differ", async () => {
    const table = await eventTable();
    const records = Array.from({ length: 10 }, (_, i) => ev(i));
    const make = () => evSink(table);
    const a = make();
    await a.write(records);
    await a.close();
    expect(a.serverFeatures?.deduplicationToken).toBe(true);
    // Same identities, different content (e.g. a re-serialization): the token, not a
    // hash of the bytes, makes ClickHouse drop the replay.
    const b = make();
    await b.write(records.map((r) => ({ ...r, count: r.count + 1000 })));
    await b.close();
    const [agg] = await rows<{ c: number; s: number }>(
      `SELECT count() AS c, sum(count) AS s FROM ${table}`,
    );
    expect(agg).toEqual({ c: 10, s: 45 });
    // Without tokens the changed block is a new insert.
    const c = evSink(table, { deduplication: "off" });
    await c.write(records.map((r) => ({ ...r, count: r.count + 1000 })));
    await c.close();
    const [after] = await rows<{ c: number }>(`SELECT count() AS c FROM ${table}`);
    expect(after!.c).toBe(20);
  });

  it("backs off on TOO_MANY_PARTS (slower) and delivers everything once merges catch up", async () => {
    const table = uniqueName("sinks_parts");
    await exec.command(
      `CREATE TABLE ${table} (id String, n UInt64) ENGINE = MergeTree ORDER BY id SETTINGS parts_to_throw_insert = 3, parts_to_delay_insert = 1000, non_replicated_deduplication_window = 100`,
    );
    await exec.command(`SYSTEM STOP MERGES ${table}`);
    const retries: Array<{ code: string; delayMs: number }> = [];
    const onRetry = (m: unknown) => {
      const r = m as { code: string; delayMs: number };
      retries.push(r);
      // what background merges would do on a busy server: merge the parts
      if (r.code === "CLICKHOUSE_252") {
        void exec
          .command(`SYSTEM START MERGES ${table}`)
          .then(() => exec.command(`OPTIMIZE TABLE ${table} FINAL`))
          .catch(() => {});
      }
    };
    diagnostics.subscribe("sluice:sink:retry", onRetry);
    try {
      const sink = createClickHouseSink<{ id: string; n: number }>({
        chdb: session,
        table,
        maxBatchRows: 2,
        maxInFlightBatches: 1,
        retry: { initialDelayMs: 10, maxDelayMs: 2000 },
      });
      await sink.write(Array.from({ length: 12 }, (_, i) => ({ id: `r${i}`, n: i })));
      await sink.close();
    } finally {
      diagnostics.unsubscribe("sluice:sink:retry", onRetry);
    }
    const parts = retries.filter((r) => r.code === "CLICKHOUSE_252");
    expect(parts.length).toBeGreaterThan(0);
    expect(Math.min(...parts.map((r) => r.delayMs))).toBeGreaterThanOrEqual(50); // 10 ms × 10 slowdown / 2
    const [agg] = await rows<{ c: number; s: number }>(
      `SELECT count() AS c, sum(n) AS s FROM ${table}`,
    );
    expect(agg).toEqual({ c: 12, s: 66 });
  });

  it("window results with DateTime64 bounds collapse to the latest emission", async () => {
    const table = uniqueName("sinks_win");
    await exec.command(windowResultTableSql({ table, ttl: "30d" }));
    const sink = createClickHouseSink({ chdb: session, table, toRow: windowResultRow });
    const base = {
      key: "u1",
      windowStart: BASE,
      windowEnd: BASE + 60_000,
      final: false,
      partition: 0,
    };
    await sink.write([{ ...base, emitSeq: 0, value: 1, id: "u1|0" }]);
    await sink.flush();
    await sink.write([{ ...base, emitSeq: 1, value: 5, final: true, id: "u1|1" }]);
    await sink.write([{ ...base, emitSeq: 0, value: 1, id: "u1|0" }]); // late replay of an older emission
    await sink.close();
    const final = await rows<{ ws: number; value: string; final: number }>(
      `SELECT toUnixTimestamp64Milli(window_start) AS ws, value, final FROM ${table} FINAL`,
    );
    expect(final).toEqual([{ ws: base.windowStart, value: "5", final: 1 }]);
  });
});
