import diagnostics from "node:diagnostics_channel";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BatchingOptions, DeadLetter } from "../src/index.js";
import { BatchingSink, type SinkDriver } from "../src/internal/batching-sink.js";
import { SinkError } from "../src/sink-error.js";
import { runSinkConformance } from "../src/test.js";

interface Rec {
  id: string;
  v: number;
}

/** An in-memory destination keyed by batch token, like a dedup window. */
class MemoryStore {
  rows: Rec[] = [];
  tokens = new Set<string>();
  failNext = 0;
  /** Answers "not there yet" (retried only for a bounded time) this many times. */
  missingNext = 0;
  missingForMs = 0;
  rejectIf: (r: Rec) => boolean = () => false;
  sends = 0;
}

function memorySink(store: MemoryStore, options: BatchingOptions<Rec> = {}) {
  const driver: SinkDriver<Rec, string> = {
    kind: "memory",
    prepare(record) {
      if (typeof record.v !== "number")
        throw new SinkError("SINK_INVALID_RECORD", "v must be a number");
      return JSON.stringify(record);
    },
    sizeOf: (payload) => payload.length,
    async send(batch) {
      store.sends++;
      await Promise.resolve();
      if (store.failNext > 0) {
        store.failNext--;
        throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
      }
      if (store.missingNext > 0) {
        store.missingNext--;
        throw Object.assign(new Error("table t doesn't exist"), { code: "MISSING" });
      }
      if (batch.some((e) => store.rejectIf(e.record))) {
        throw Object.assign(new Error("bad row"), { code: "BAD" });
      }
      const token = batch.map((e) => e.id).join(",");
      if (store.tokens.has(token)) return undefined;
      store.tokens.add(token);
      for (const e of batch) store.rows.push(JSON.parse(e.payload));
      return undefined;
    },
    async ping() {
      if (store.failNext > 0)
        throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
    },
    classify(err) {
      const code = (err as { code?: string }).code ?? "UNKNOWN";
      if (code === "MISSING") {
        return { retryable: true, code, retryForMs: store.missingForMs, advice: "create t" };
      }
      return { retryable: code === "ECONNREFUSED", code };
    },
    async release() {},
  };
  return new BatchingSink(
    driver,
    { retry: { initialDelayMs: 1, maxDelayMs: 5 }, ...options },
    {
      name: "memory",
      maxBatchRows: 10,
    },
  );
}

const recs = (n: number, start = 0): Rec[] =>
  Array.from({ length: n }, (_, i) => ({ id: `r${start + i}`, v: start + i }));

const shared = new MemoryStore();
runSinkConformance<Rec>({
  name: "conformance: in-memory reference sink",
  makeSink: (hints) => memorySink(shared, hints),
  makeRecords: recs,
  identity: (r) => r.id,
  readBack: async () => shared.rows.map((r) => r.id),
  reset: async () => {
    shared.rows = [];
    shared.tokens.clear();
  },
});

describe("BatchingSink", () => {
  const subs: Array<[string, (m: unknown) => void]> = [];
  afterEach(() => {
    for (const [name, fn] of subs.splice(0)) diagnostics.unsubscribe(name, fn);
    vi.restoreAllMocks();
  });
  function listen(name: string): unknown[] {
    const got: unknown[] = [];
    const fn = (m: unknown) => got.push(m);
    diagnostics.subscribe(name, fn);
    subs.push([name, fn]);
    return got;
  }

  it("retries retryable errors with backoff and publishes sluice:sink:retry", async () => {
    const store = new MemoryStore();
    store.failNext = 3;
    const retries = listen("sluice:sink:retry");
    const sink = memorySink(store);
    await sink.write(recs(5));
    await sink.flush();
    expect(store.rows).toHaveLength(5);
    expect(retries).toHaveLength(3);
    expect(retries[0]).toMatchObject({
      sink: "memory",
      name: "memory",
      attempt: 1,
      code: "ECONNREFUSED",
    });
    await sink.close();
  });

  it("fails with SINK_RETRIES_EXHAUSTED after maxAttempts and stays failed", async () => {
    const store = new MemoryStore();
    store.failNext = 100;
    const sink = memorySink(store, { retry: { initialDelayMs: 1, maxAttempts: 3 } });
    await sink.write(recs(2));
    const err = await sink.flush().catch((e) => e);
    expect(SinkError.isInstance(err)).toBe(true);
    expect(err.code).toBe("SINK_RETRIES_EXHAUSTED");
    expect(err.retryable).toBe(true);
    expect(store.sends).toBe(3);
    await expect(sink.write(recs(1, 9))).rejects.toMatchObject({ code: "SINK_RETRIES_EXHAUSTED" });
  });

  it("retries an answer bounded by retryForMs while it lasts less than the bound", async () => {
    const store = new MemoryStore();
    store.missingNext = 4;
    store.missingForMs = 10_000;
    const retries = listen("sluice:sink:retry");
    const sink = memorySink(store);
    await sink.write(recs(5));
    await sink.flush();
    expect(store.rows).toHaveLength(5);
    expect(retries).toHaveLength(4);
    expect(retries[0]).toMatchObject({ attempt: 1, code: "MISSING" });
    await sink.close();
  });

  it("fails with SINK_REJECTED, without bisecting, once a bounded answer outlasts retryForMs", async () => {
    const store = new MemoryStore();
    store.missingNext = 1_000_000;
    store.missingForMs = 200;
    const sink = memorySink(store, { retry: { initialDelayMs: 10, maxDelayMs: 20 } });
    await sink.write(recs(4));
    const started = performance.now();
    const err = await sink.flush().catch((e) => e);
    const tookMs = performance.now() - started;
    expect(err).toMatchObject({ code: "SINK_REJECTED", retryable: false });
    expect(err.message).toMatch(
      /failed \(MISSING\) after \d+ attempts in \d+ ms: table t doesn't exist; create t$/,
    );
    expect(tookMs).toBeGreaterThanOrEqual(190);
    expect(tookMs).toBeLessThan(2_000);
    // Only the whole batch was sent, never halves.
    expect(store.sends).toBeGreaterThan(3);
    expect(store.rows).toEqual([]);
    await expect(sink.write(recs(1, 9))).rejects.toMatchObject({ code: "SINK_REJECTED" });
  });

  it("retryForMs 0 fails at the first answer; another failure in between starts the bound over", async () => {
    const store = new MemoryStore();
    store.missingNext = 1;
    const sink = memorySink(store);
    await sink.write(recs(2));
    await expect(sink.flush()).rejects.toMatchObject({
      code: "SINK_REJECTED",
      message: 'memory sink "memory" failed (MISSING): table t doesn\'t exist; create t',
    });
    expect(store.sends).toBe(1);

    // 3 bounded answers (160 ms apart at most), a refused connection, 3 more
    // (480 ms from the first): each run is shorter than the 300 ms bound, the
    // two together are not.
    vi.spyOn(Math, "random").mockReturnValue(1);
    const again = new MemoryStore();
    again.missingForMs = 300;
    const sequence = [
      "MISSING",
      "MISSING",
      "MISSING",
      "ECONNREFUSED",
      "MISSING",
      "MISSING",
      "MISSING",
    ];
    const delays: number[] = [];
    const onRetry = listen("sluice:sink:retry");
    const flaky = new BatchingSink<Rec, string>(
      {
        kind: "memory",
        prepare: (r) => JSON.stringify(r),
        sizeOf: (p) => p.length,
        async send(batch) {
          const code = sequence.shift();
          if (code) throw Object.assign(new Error(code), { code });
          for (const e of batch) again.rows.push(JSON.parse(e.payload));
          return undefined;
        },
        classify(err) {
          const code = (err as { code: string }).code;
          return code === "MISSING"
            ? { retryable: true, code, retryForMs: again.missingForMs }
            : { retryable: true, code };
        },
        async ping() {},
        async release() {},
      },
      { retry: { initialDelayMs: 80, maxDelayMs: 80, multiplier: 1 } },
      { name: "memory", maxBatchRows: 10 },
    );
    await flaky.write(recs(3));
    await flaky.flush();
    for (const m of onRetry) delays.push((m as { delayMs: number }).delayMs);
    expect(again.rows).toHaveLength(3);
    expect(delays).toEqual([80, 80, 80, 80, 80, 80, 80]);
    await flaky.close();
  });

  it("bisects a permanently rejected batch and dead-letters only the bad record", async () => {
    const store = new MemoryStore();
    store.rejectIf = (r) => r.v === 6;
    const letters: DeadLetter<Rec>[] = [];
    const dlq = listen("sluice:sink:dlq");
    const sink = memorySink(store, { deadLetter: (l) => void letters.push(...l) });
    await sink.write(recs(10));
    await sink.flush();
    expect(store.rows.map((r) => r.v).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 7, 8, 9]);
    expect(letters.map((l) => l.id)).toEqual(["r6"]);
    expect(letters[0]!.code).toBe("BAD");
    expect(letters[0]!.error.message).toBe("bad row");
    expect(dlq).toEqual([{ sink: "memory", name: "memory", count: 1, code: "BAD" }]);
    await sink.close();
  });

  it("without a dead-letter handler a permanent reject fails with SINK_REJECTED", async () => {
    const store = new MemoryStore();
    store.rejectIf = (r) => r.v === 1;
    const sink = memorySink(store);
    await sink.write(recs(2));
    await expect(sink.flush()).rejects.toMatchObject({ code: "SINK_REJECTED", retryable: false });
    expect(store.rows.map((r) => r.v)).toEqual([0]);
  });

  it("a throwing dead-letter handler fails with SINK_DEAD_LETTER_FAILED", async () => {
    const store = new MemoryStore();
    store.rejectIf = () => true;
    const sink = memorySink(store, {
      deadLetter: () => {
        throw new Error("dlq down");
      },
    });
    await sink.write(recs(1));
    await expect(sink.flush()).rejects.toMatchObject({ code: "SINK_DEAD_LETTER_FAILED" });
  });

  it("records that cannot be encoded go to the dead letter handler, or reject write with SINK_INVALID_RECORD", async () => {
    const store = new MemoryStore();
    const bad = { id: "x", v: "nope" } as unknown as Rec;
    const plain = memorySink(store);
    await expect(plain.write([bad])).rejects.toMatchObject({ code: "SINK_INVALID_RECORD" });
    await expect(plain.write([{ v: 1 } as unknown as Rec])).rejects.toMatchObject({
      code: "SINK_INVALID_RECORD",
    });
    const letters: DeadLetter<Rec>[] = [];
    const withDlq = memorySink(store, { deadLetter: (l) => void letters.push(...l) });
    await withDlq.write([bad, ...recs(1)]);
    await withDlq.flush();
    expect(letters.map((l) => l.code)).toEqual(["SINK_INVALID_RECORD"]);
    expect(store.rows).toHaveLength(1);
    await plain.close();
    await withDlq.close();
  });

  it("applies backpressure: write waits while the buffer is over its bound", async () => {
    const store = new MemoryStore();
    store.failNext = 1_000_000;
    const buffers = listen("sluice:sink:buffer");
    const sink = memorySink(store, {
      maxBatchRows: 5,
      maxBufferedRows: 10,
      retry: { initialDelayMs: 1, maxDelayMs: 2 },
    });
    await sink.write(recs(10));
    let done = false;
    const pending = sink.write(recs(5, 10)).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(done).toBe(false);
    expect(sink.bufferedRows).toBe(15);
    expect(buffers).toContainEqual({
      sink: "memory",
      name: "memory",
      buffered: 15,
      backpressure: true,
    });
    store.failNext = 0;
    await pending;
    await sink.flush();
    expect(store.rows).toHaveLength(15);
    await sink.close();
  });

  it("sends a partial batch after maxDelayMs without a flush", async () => {
    const store = new MemoryStore();
    const batches = listen("sluice:sink:batch");
    const sink = memorySink(store, { maxDelayMs: "10ms" });
    await sink.write(recs(3));
    for (let i = 0; i < 100 && store.rows.length < 3; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(store.rows).toHaveLength(3);
    expect(batches[0]).toMatchObject({ sink: "memory", name: "memory", rows: 3 });
    await sink.close();
  });

  it("cuts batches by maxBatchBytes", async () => {
    const store = new MemoryStore();
    const batches = listen("sluice:sink:batch");
    const sink = memorySink(store, { maxBatchBytes: 40 });
    await sink.write(recs(4));
    await sink.flush();
    expect((batches as Array<{ rows: number }>).every((b) => b.rows <= 2)).toBe(true);
    expect(store.rows).toHaveLength(4);
    await sink.close();
  });

  it("with several batches in flight, acknowledgements follow write order", async () => {
    const sent: string[] = [];
    const gates: Array<() => void> = [];
    const driver: SinkDriver<Rec, string> = {
      kind: "memory",
      maxInFlight: 2,
      prepare: (r) => r.id,
      sizeOf: () => 1,
      async send(batch) {
        sent.push(batch.map((e) => e.id).join(","));
        await new Promise<void>((resolve) => gates.push(resolve));
        return undefined;
      },
      classify: () => ({ retryable: false, code: "X" }),
      async ping() {},
      async release() {},
    };
    const sink = new BatchingSink(driver, { maxBatchRows: 2 }, { name: "m", maxBatchRows: 2 });
    await sink.write(recs(6));
    expect(sent).toEqual(["r0,r1", "r2,r3"]); // two in flight, the third waits for a slot
    let flushed = false;
    const flush = sink.flush().then(() => {
      flushed = true;
    });
    gates[1]!(); // the second batch finishes first
    await new Promise((r) => setTimeout(r, 5));
    expect(sink.bufferedRows).toBe(6); // nothing acknowledged while the first is pending
    expect(sent).toEqual(["r0,r1", "r2,r3", "r4,r5"]);
    gates[0]!();
    await new Promise((r) => setTimeout(r, 5));
    expect(sink.bufferedRows).toBe(2);
    expect(flushed).toBe(false);
    gates[2]!();
    await flush;
    expect(sink.bufferedRows).toBe(0);
    await sink.close();
  });

  it("validates options with SINK_INVALID_OPTIONS", () => {
    const store = new MemoryStore();
    expect(() => memorySink(store, { maxBatchRows: 0 })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
    expect(() => memorySink(store, { maxDelayMs: "soon" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
    expect(() => memorySink(store, { maxBatchRows: 50, maxBufferedRows: 10 })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
    expect(() => memorySink(store, { name: "" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
  });

  it("health reports reachability, sticky failure and close", async () => {
    const store = new MemoryStore();
    const sink = memorySink(store, { retry: { initialDelayMs: 1, maxAttempts: 2 } });
    expect(await sink.health()).toEqual({ ok: true, detail: "0 rows buffered" });
    store.failNext = 1;
    expect(await sink.health()).toMatchObject({
      ok: false,
      detail: expect.stringContaining("ECONNREFUSED"),
    });
    store.failNext = 5;
    await sink.write(recs(1));
    await expect(sink.flush()).rejects.toMatchObject({ code: "SINK_RETRIES_EXHAUSTED" });
    store.failNext = 0;
    expect(await sink.health()).toMatchObject({
      ok: false,
      detail: expect.stringContaining("sink failed"),
    });
    const other = memorySink(store);
    await other.close();
    expect(await other.health()).toEqual({ ok: false, detail: "sink is closed" });
  });

  it("SINK_CLOSED after close", async () => {
    const sink = memorySink(new MemoryStore());
    await sink.close();
    const err = await sink.write([]).catch((e) => e);
    expect(err).toBeInstanceOf(SinkError);
    expect(err.code).toBe("SINK_CLOSED");
  });
});
