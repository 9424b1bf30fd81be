import { SluiceError } from "@sluice/schema";
import { describe, expect, it } from "vitest";
import {
  count,
  createJob,
  createTestDriver,
  defineJob,
  type LateRecord,
  sum,
  tumbling,
  WindowingError,
} from "../src/index.js";

type Click = { user: string; page: string; ts: number; amount: number };

const schema = {
  decode(bytes: Buffer): Click {
    let v: unknown;
    try {
      v = JSON.parse(bytes.toString("utf8"));
    } catch (err) {
      throw new SluiceError("SCHEMA_DECODE_FAILED", "not JSON", { cause: err });
    }
    if (typeof (v as Click).user !== "string")
      throw new SluiceError("SCHEMA_INVALID_EVENT", "user must be a string");
    return v as Click;
  },
};

describe("TestDriver", () => {
  it("decodes raw records, reads event time from a field, sends bad records to the DLQ and keeps going", () => {
    const job = defineJob<Click>({ source: { schema, eventTime: "ts" } })
      .filter((c) => c.amount > 0)
      .window(tumbling({ size: 100 }))
      .aggregate({ n: count(), spend: sum((c: Click) => c.amount) });
    const d = createTestDriver(job);
    d.pipeRaw(JSON.stringify({ user: "u1", page: "/", ts: 10, amount: 5 }), { key: "u1" });
    d.pipeRaw("{not json", { key: "u1" });
    d.pipeRaw(JSON.stringify({ user: 7, ts: 11 }), { key: "u1" });
    d.pipeRaw(JSON.stringify({ user: "u1", page: "/", ts: "never", amount: 5 }), { key: "u1" });
    d.pipeRaw(JSON.stringify({ user: "u1", page: "/", ts: 20, amount: 0 }), { key: "u1" }); // filtered
    d.pipeRaw(JSON.stringify({ user: "u1", page: "/", ts: 30, amount: 7 }), { key: "u1" });
    d.advanceStreamTime(100);
    expect(d.results.map((r) => r.value)).toEqual([{ n: 2, spend: 12 }]);
    expect(d.dlq.map((x) => [x.code, x.offset])).toEqual([
      ["SCHEMA_DECODE_FAILED", "1"],
      ["SCHEMA_INVALID_EVENT", "2"],
      ["WINDOWING_INVALID_TIMESTAMP", "3"],
    ]);
    expect(Buffer.isBuffer(d.dlq[0]?.value)).toBe(true);
  });

  it("a throwing user function dead-letters the record with WINDOWING_USER_FUNCTION_FAILED", () => {
    const d = createTestDriver(
      defineJob<{ n: number }>()
        .map((x) => {
          if (x.n < 0) throw new Error("negative");
          return x;
        })
        .window(tumbling({ size: 10 }))
        .aggregate(count()),
    );
    d.pipe({ n: -1 }, { timestamp: 1 });
    d.pipe({ n: 1 }, { timestamp: 2 });
    expect(d.dlq).toMatchObject([{ code: "WINDOWING_USER_FUNCTION_FAILED", reason: "negative" }]);
    expect(d.state()).toMatchObject([{ value: 1 }]);
  });

  it("keyBy re-keys and routes each key to one partition, as the repartition topic does", () => {
    const d = createTestDriver(
      defineJob<Click>()
        .keyBy((c) => c.page)
        .window(tumbling({ size: 100 }))
        .aggregate(count()),
      { partitions: 3 },
    );
    for (let i = 0; i < 30; i++) {
      d.pipe(
        { user: `u${i}`, page: `/p${i % 4}`, ts: i, amount: 1 },
        { key: `u${i}`, partition: i % 3, timestamp: i },
      );
    }
    d.advanceStreamTime(100);
    const byKey = new Map<string, number[]>();
    for (const r of d.results) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.partition]);
    expect([...byKey.keys()].sort()).toEqual(["/p0", "/p1", "/p2", "/p3"]);
    for (const parts of byKey.values()) expect(parts).toHaveLength(1);
    expect(d.results.reduce((a, r) => a + (r.value as number), 0)).toBe(30);
  });

  it("idleCloseMs closes windows of a quiet partition by the wall clock", () => {
    const d = createTestDriver(
      defineJob<number>({ idleCloseMs: "5s" })
        .window(tumbling({ size: 1000 }))
        .aggregate(count()),
      { wallClock: 1_000_000, partitions: 2 },
    );
    d.pipe(1, { key: "a", timestamp: 500 });
    d.advanceWallClock(4_000);
    expect(d.results).toEqual([]);
    d.advanceWallClock(1_000); // idle 5 s: stream time 500 + 5000 closes [0, 1000)
    expect(d.results).toMatchObject([{ key: "a", windowStart: 0, final: true, value: 1 }]);
    expect(d.streamTime(0)).toBe(5_500);
  });

  it("calls onLate callbacks and counts late records", () => {
    const seen: LateRecord<number>[] = [];
    const d = createTestDriver(
      defineJob<number>()
        .window(tumbling({ size: 10 }))
        .aggregate(count())
        .onLate((l) => {
          seen.push(l);
        }),
    );
    d.pipe(1, { key: "a", timestamp: 50 });
    d.pipe(2, { key: "a", timestamp: 3 });
    expect(seen).toMatchObject([{ key: "a", value: 2, timestamp: 3, streamTime: 50 }]);
    expect(d.late).toHaveLength(1);
  });

  it("rejects use after close and incomplete pipelines", async () => {
    const d = createTestDriver(
      defineJob<number>()
        .window(tumbling({ size: 10 }))
        .aggregate(count()),
    );
    d.close();
    await d[Symbol.asyncDispose]();
    expect(d.status).toBe("closed");
    expect(() => d.pipe(1)).toThrow(expect.objectContaining({ code: "WINDOWING_DRIVER_CLOSED" }));
    expect(() => createTestDriver(defineJob<number>())).toThrow(
      expect.objectContaining({ code: "WINDOWING_PIPELINE_INCOMPLETE" }),
    );
    expect(() =>
      createTestDriver(
        defineJob<number>()
          .window(tumbling({ size: 1 }))
          .aggregate(count()),
        { partitions: 0 },
      ),
    ).toThrow(expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }));
  });
});

describe("Job builder and errors", () => {
  const base = {
    brokers: ["127.0.0.1:9092"],
    applicationId: "app",
    source: { topic: "t", schema },
    stateDir: "/tmp/x",
  };

  it("validates options up front", () => {
    expect(() => createJob({ ...base, brokers: [] })).toThrow(/kafka .* or brokers/);
    expect(() => createJob({ ...base, applicationId: "a b" })).toThrow(/applicationId/);
    expect(() => createJob({ ...base, source: { topic: "", schema } })).toThrow(/source.topic/);
    expect(() => createJob({ ...base, source: { topic: "t" } as never })).toThrow(/source.schema/);
    expect(() => createJob({ ...base, stateDir: "" })).toThrow(/stateDir/);
    expect(() => createJob({ ...base, guarantee: "maybe" as never })).toThrow(/guarantee/);
    expect(() => createJob({ ...base, commitIntervalMs: "often" })).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
    expect(() =>
      createJob({ ...base, source: { topic: "t", schema, eventTime: 5 as never } }),
    ).toThrow(/eventTime/);
  });

  it("enforces step order and single window/aggregate", () => {
    const job = createJob(base);
    expect(() => job.aggregate(count())).toThrow(/after window/);
    job.window(tumbling({ size: 10 }));
    expect(() => job.window(tumbling({ size: 10 }))).toThrow(/already set/);
    expect(() => job.filter(() => true)).toThrow(/before window/);
    expect(() => job.window({ type: "weird" } as never)).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
    job.aggregate(count());
    expect(() => job.aggregate(count())).toThrow(/already set/);
    expect(() => job.emit("sometimes" as never)).toThrow(/emit must be/);
    expect(() => job.to(42 as never)).toThrow(/to\(\) needs/);
    expect(() => job.onLate({} as never)).toThrow(/onLate\(\) needs/);
  });

  it("start() rejects for defineJob jobs and incomplete or stopped jobs", async () => {
    await expect(
      defineJob<number>()
        .window(tumbling({ size: 1 }))
        .aggregate(count())
        .start(),
    ).rejects.toMatchObject({
      code: "WINDOWING_INVALID_OPTIONS",
    });
    await expect(createJob(base).start()).rejects.toMatchObject({
      code: "WINDOWING_PIPELINE_INCOMPLETE",
    });
    const job = createJob(base)
      .window(tumbling({ size: 1 }))
      .aggregate(count());
    await job.stop();
    await job.stop();
    expect(job.status).toBe("closed");
    await expect(job.start()).rejects.toMatchObject({ code: "WINDOWING_JOB_CLOSED" });
    expect(() => job.emit("final")).toThrow(
      expect.objectContaining({ code: "WINDOWING_JOB_CLOSED" }),
    );
  });

  it("WindowingError carries code, retryable and the shared brand", () => {
    const codes = [
      "WINDOWING_INVALID_OPTIONS",
      "WINDOWING_PIPELINE_INCOMPLETE",
      "WINDOWING_INVALID_TIMESTAMP",
      "WINDOWING_JOB_CLOSED",
      "WINDOWING_DRIVER_CLOSED",
      "WINDOWING_ALREADY_STARTED",
      "WINDOWING_KAFKA_FAILED",
      "WINDOWING_RESTORE_FAILED",
      "WINDOWING_USER_FUNCTION_FAILED",
      "WINDOWING_NOT_COPARTITIONED",
    ] as const;
    for (const code of codes) {
      const err = new WindowingError(code, "m");
      expect(err.code).toBe(code);
      expect(SluiceError.isInstance(err)).toBe(true);
      expect(WindowingError.isInstance(err)).toBe(true);
      expect(err.retryable).toBe(
        code === "WINDOWING_KAFKA_FAILED" || code === "WINDOWING_RESTORE_FAILED",
      );
    }
    expect(WindowingError.isInstance(new SluiceError("X", "m"))).toBe(false);
    expect(new WindowingError("WINDOWING_KAFKA_FAILED", "m", { retryable: false }).retryable).toBe(
      false,
    );
  });
});
