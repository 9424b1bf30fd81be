import { describe, expect, it } from "vitest";
import {
  featuresOf,
  quoteIdentifier,
  SinkError,
  type SinkErrorCode,
  SluiceError,
  windowResultRow,
  windowResultTableSql,
} from "../src/index.js";
import { backoffDelay } from "../src/internal/backoff.js";
import { classifyClickHouse, clickHouseCode } from "../src/internal/clickhouse-errors.js";
import { batchToken, defaultIdentity } from "../src/internal/identity.js";

describe("SinkError", () => {
  const codes: SinkErrorCode[] = [
    "SINK_CLOSED",
    "SINK_INVALID_OPTIONS",
    "SINK_INVALID_IDENTIFIER",
    "SINK_INVALID_RECORD",
    "SINK_REJECTED",
    "SINK_RETRIES_EXHAUSTED",
    "SINK_DEAD_LETTER_FAILED",
    "SINK_UNSUPPORTED",
  ];
  for (const code of codes) {
    it(`carries ${code}, cause and retryable, and is a SluiceError`, () => {
      const cause = new Error("underlying");
      const err = new SinkError(code, `msg ${code}`, {
        cause,
        retryable: code === "SINK_RETRIES_EXHAUSTED",
      });
      expect(err.code).toBe(code);
      expect(err.cause).toBe(cause);
      expect(err.retryable).toBe(code === "SINK_RETRIES_EXHAUSTED");
      expect(err.name).toBe("SinkError");
      expect(SinkError.isInstance(err)).toBe(true);
      expect(SluiceError.isInstance(err)).toBe(true);
    });
  }
  it("isInstance rejects other errors", () => {
    expect(SinkError.isInstance(new Error("x"))).toBe(false);
    expect(SinkError.isInstance(new SluiceError("SCHEMA_INVALID_EVENT", "x"))).toBe(false);
  });
});

describe("ClickHouse error classification", () => {
  it("reads codes from the client, chDB and old server text", () => {
    expect(clickHouseCode({ code: "252", message: "x" })).toBe(252);
    expect(clickHouseCode({ clickhouseCode: 27 })).toBe(27);
    expect(
      clickHouseCode(new Error("Code: 60, e.displayText() = DB::Exception: Table x doesn't exist")),
    ).toBe(60);
    expect(
      clickHouseCode(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })),
    ).toBeUndefined();
  });
  it("retries transport errors and overload, backs off harder on TOO_MANY_PARTS", () => {
    expect(classifyClickHouse(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toEqual({
      retryable: true,
      code: "ECONNRESET",
    });
    expect(classifyClickHouse(new Error("socket hang up"))).toMatchObject({ retryable: true });
    expect(classifyClickHouse({ code: "252", message: "Too many parts" })).toEqual({
      retryable: true,
      code: "CLICKHOUSE_252",
      slowdown: 10,
    });
    expect(classifyClickHouse({ code: "241" })).toMatchObject({ retryable: true });
  });
  it("bisects row errors, fails fast on table-level errors", () => {
    expect(classifyClickHouse({ code: "27" })).toEqual({
      retryable: false,
      fatal: false,
      code: "CLICKHOUSE_27",
    });
    expect(classifyClickHouse({ code: "164" })).toMatchObject({ retryable: false, fatal: true });
    expect(classifyClickHouse({ code: "516" })).toMatchObject({ retryable: false, fatal: true });
    expect(classifyClickHouse(new SinkError("SINK_UNSUPPORTED", "x"))).toMatchObject({
      fatal: true,
    });
  });

  it("retries an unknown table or database for the sink's bound, by default not at all", () => {
    for (const code of ["60", "81"]) {
      expect(classifyClickHouse({ code })).toEqual({
        retryable: true,
        code: `CLICKHOUSE_${code}`,
        retryForMs: 0,
      });
      expect(classifyClickHouse({ code }, { retryForMs: 60_000, advice: "create it" })).toEqual({
        retryable: true,
        code: `CLICKHOUSE_${code}`,
        retryForMs: 60_000,
        advice: "create it",
      });
    }
    expect(classifyClickHouse({ code: "241" }, { retryForMs: 5, advice: "x" })).toEqual({
      retryable: true,
      code: "CLICKHOUSE_241",
    });
  });
});

describe("helpers", () => {
  it("backoff grows exponentially with jitter in [base/2, base] and is capped", () => {
    const p = { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, maxAttempts: 10 };
    expect(backoffDelay(p, 1, 1, () => 0)).toBe(50);
    expect(backoffDelay(p, 1, 1, () => 1)).toBe(100);
    expect(backoffDelay(p, 3, 1, () => 1)).toBe(400);
    expect(backoffDelay(p, 10, 1, () => 1)).toBe(1000);
    expect(backoffDelay(p, 1, 10, () => 1)).toBe(1000);
  });
  it("batch tokens are deterministic and order-sensitive", () => {
    expect(batchToken(["a", "b"])).toBe(batchToken(["a", "b"]));
    expect(batchToken(["a", "b"])).not.toBe(batchToken(["b", "a"]));
    expect(batchToken(["ab"])).not.toBe(batchToken(["a", "b"]));
    expect(batchToken(["a"])).toMatch(/^[0-9a-f]{40}$/);
  });
  it("default identity: id, else topic:partition:offset", () => {
    expect(defaultIdentity({ id: "k|1|2|0" })).toBe("k|1|2|0");
    expect(defaultIdentity({ topic: "events", partition: 3, offset: "17" })).toBe("events:3:17");
    expect(defaultIdentity({ value: 1 })).toBeUndefined();
  });
  it("quotes plain identifiers and refuses the rest", () => {
    expect(quoteIdentifier("events_2")).toBe("`events_2`");
    for (const bad of ["", "1a", "a-b", "a`b", "a b", "a.b", "é"]) {
      expect(() => quoteIdentifier(bad)).toThrow(
        expect.objectContaining({ code: "SINK_INVALID_IDENTIFIER" }),
      );
    }
  });
  it("features follow the server version", () => {
    const old = featuresOf("18.16.1");
    expect(old).toMatchObject({
      major: 18,
      minor: 16,
      deduplicationToken: false,
      ttl: false,
      lowCardinality: false,
    });
    expect(featuresOf("22.2.1")).toMatchObject({ deduplicationToken: true, dateTime64: true });
    expect(featuresOf("26.7.2.1").bool).toBe(true);
  });
  it("window result rows and tables", () => {
    expect(
      windowResultRow({
        key: "u",
        windowStart: 1,
        windowEnd: 2,
        value: { n: 1 },
        final: true,
        emitSeq: 3,
        partition: 4,
        id: "x",
      }),
    ).toEqual({
      key: "u",
      window_start: 1,
      window_end: 2,
      emit_seq: 3,
      final: 1,
      partition: 4,
      id: "x",
      value: '{"n":1}',
    });
    const sql = windowResultTableSql({ table: "w", features: featuresOf("18.16.1"), ttl: "1d" });
    expect(sql).toContain("ReplacingMergeTree(emit_seq)");
    expect(sql).toContain("ORDER BY (key, window_start, window_end)");
    expect(sql).toContain("deleted UInt8 DEFAULT 0");
    expect(sql).toContain("window_start UInt64");
    expect(
      windowResultRow({
        key: "u",
        windowStart: 1,
        windowEnd: 2,
        value: null,
        final: false,
        emitSeq: 4,
        partition: 4,
        id: "1:2:4:u",
        retracted: true,
      }),
    ).toMatchObject({ emit_seq: 4, final: 0, deleted: 1, value: "null", id: "1:2:4:u" });
    expect(sql).not.toContain("TTL");
    expect(() => windowResultTableSql({ table: "w;drop" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_IDENTIFIER" }),
    );
  });
});

describe("createClickHouseSink options", () => {
  it("needs exactly one connection and valid settings", async () => {
    const { createClickHouseSink } = await import("../src/index.js");
    const invalid = expect.objectContaining({ code: "SINK_INVALID_OPTIONS" });
    expect(() => createClickHouseSink({ table: "t" })).toThrow(invalid);
    expect(() =>
      createClickHouseSink({ table: "t", url: "http://127.0.0.1:1", executor: {} as never }),
    ).toThrow(invalid);
    expect(() =>
      createClickHouseSink({
        table: "t",
        url: "http://127.0.0.1:1",
        deduplication: "maybe" as never,
      }),
    ).toThrow(invalid);
    expect(() =>
      createClickHouseSink({ table: "t", url: "http://127.0.0.1:1", keepAliveIdleMs: -1 }),
    ).toThrow(invalid);
    const sink = createClickHouseSink({ table: "t", url: "http://127.0.0.1:1" });
    expect(sink.name).toBe("t");
    expect(sink.status).toBe("open");
    await sink.close();
    expect(sink.status).toBe("closed");
  });
});

describe("eventTableSql validation", () => {
  const schema = {
    type: "object",
    properties: {
      user_id: { type: "string" },
      ts: { type: "string", format: "date-time" },
      note: { type: "string" },
    },
    required: ["user_id", "ts"],
  };
  it("derives the time column and orders by user when there is no type column", async () => {
    const { eventTableSql } = await import("../src/index.js");
    const sql = eventTableSql({ table: "e", schema });
    expect(sql).toContain("ORDER BY (`user_id`, `ts`)");
    expect(sql).toContain("`note` Nullable(String)");
    expect(sql).toContain("TTL toDateTime(`ts`) + INTERVAL 604800 SECOND DELETE");
  });
  it("refuses bad durations, schemas and volumes", async () => {
    const { eventTableSql } = await import("../src/index.js");
    const invalid = expect.objectContaining({ code: "SINK_INVALID_OPTIONS" });
    expect(() => eventTableSql({ table: "e", schema, hotTtl: "soon" })).toThrow(invalid);
    expect(() => eventTableSql({ table: "e", schema: { type: "object" } })).toThrow(invalid);
    expect(() => eventTableSql({ table: "e", schema, timestampColumn: "note" })).toThrow(invalid);
    expect(() => eventTableSql({ table: "e", schema, coldVolume: "x'; DROP" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_IDENTIFIER" }),
    );
  });
});
