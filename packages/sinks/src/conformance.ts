import assert from "node:assert/strict";
import type { Sink } from "./sink.js";

/**
 * Batching hints the conformance suite passes to `makeSink`; apply them so the
 * cases exercise several batches and a full buffer.
 *
 * @since 0.1.0
 */
export interface ConformanceSinkHints {
  /** Use as the sink's `maxBatchRows`. */
  maxBatchRows: number;
  /** Use as the sink's `maxBufferedRows`. */
  maxBufferedRows: number;
  /** Use as the sink's `maxDelayMs`. */
  maxDelayMs: number;
}

/**
 * What the conformance suite needs to know about a sink and its destination.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface SinkConformanceOptions<R> {
  /** Suite title. @defaultValue "sink conformance" */
  name?: string;
  /** A fresh sink writing to the destination under test. */
  makeSink(hints: ConformanceSinkHints): Sink<R> | Promise<Sink<R>>;
  /** `count` deterministic records for indexes `start … start+count-1`, each with a distinct identity. */
  makeRecords(count: number, start: number): R[];
  /** The record's identity, as the destination will store it. */
  identity(record: R): string;
  /** Every identity stored in the destination, once per stored copy (duplicates must show up twice). */
  readBack(): Promise<readonly string[]>;
  /** Empties the destination; called before each case. */
  reset?(): Promise<void>;
  /** Per-case timeout for test runners. @defaultValue 60000 */
  timeoutMs?: number;
}

/**
 * One conformance case: a name and a function that throws (an
 * `AssertionError`) when the sink misbehaves.
 *
 * @since 0.1.0
 */
export interface SinkConformanceCase {
  /** What the case checks. */
  name: string;
  /** Runs the case against a fresh sink. */
  run(): Promise<void>;
}

const hints: ConformanceSinkHints = { maxBatchRows: 7, maxBufferedRows: 20, maxDelayMs: 20 };

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

/**
 * The sink conformance cases as plain async functions, for any test runner.
 * With vitest, call `runSinkConformance` from `@sluice/sinks/test` instead.
 *
 * @typeParam R - the record type
 * @param options - how to make sinks and records and read the destination back
 * @returns the cases, in order
 * @throws nothing itself; each case's `run` throws an `AssertionError` on a failure
 * @example
 * ```ts
 * for (const c of sinkConformanceCases({ makeSink, makeRecords, identity, readBack, reset })) {
 *   await c.run();
 * }
 * ```
 * @since 0.1.0
 */
export function sinkConformanceCases<R>(options: SinkConformanceOptions<R>): SinkConformanceCase[] {
  const { makeRecords, identity, readBack } = options;
  const fresh = async (): Promise<Sink<R>> => {
    await options.reset?.();
    return options.makeSink(hints);
  };
  const ids = (records: readonly R[]) => sorted(records.map(identity));
  const closeQuietly = async (sink: Sink<R>) => {
    try {
      await sink.close();
    } catch {
      // the case already failed; don't mask its error
    }
  };

  return [
    {
      name: "starts open with a name",
      async run() {
        const sink = await fresh();
        try {
          assert.equal(sink.status, "open");
          assert.equal(typeof sink.name, "string");
          assert.ok(sink.name.length > 0, "name must not be empty");
        } finally {
          await closeQuietly(sink);
        }
      },
    },
    {
      name: "write then flush delivers every record exactly once, across several batches",
      async run() {
        const sink = await fresh();
        try {
          const records = makeRecords(53, 0);
          await sink.write(records.slice(0, 10));
          await sink.write(records.slice(10));
          await sink.flush();
          assert.deepEqual(sorted(await readBack()), ids(records));
        } finally {
          await closeQuietly(sink);
        }
      },
    },
    {
      name: "empty write and flush with nothing pending resolve",
      async run() {
        const sink = await fresh();
        try {
          await sink.write([]);
          await sink.flush();
          await sink.flush();
          assert.deepEqual(await readBack(), []);
        } finally {
          await closeQuietly(sink);
        }
      },
    },
    {
      name: "replaying the same records three times leaves the destination unchanged",
      async run() {
        const records = makeRecords(30, 100);
        for (let round = 0; round < 4; round++) {
          const sink = round === 0 ? await fresh() : await options.makeSink(hints);
          try {
            await sink.write(records);
            await sink.flush();
          } finally {
            await closeQuietly(sink);
          }
          assert.deepEqual(sorted(await readBack()), ids(records), `after round ${round + 1}`);
        }
      },
    },
    {
      name: "a crash replay from the last flush point adds only the new records",
      async run() {
        const first = makeRecords(14, 200);
        const more = makeRecords(21, 214);
        let sink = await fresh();
        try {
          await sink.write(first);
          await sink.flush();
        } finally {
          await closeQuietly(sink);
        }
        sink = await options.makeSink(hints);
        try {
          await sink.write(first);
          await sink.write(more);
          await sink.flush();
        } finally {
          await closeQuietly(sink);
        }
        assert.deepEqual(sorted(await readBack()), ids([...first, ...more]));
      },
    },
    {
      name: "close flushes what was written",
      async run() {
        const sink = await fresh();
        const records = makeRecords(12, 300);
        await sink.write(records);
        await sink.close();
        assert.equal(sink.status, "closed");
        assert.deepEqual(sorted(await readBack()), ids(records));
      },
    },
    {
      name: "close is idempotent and later calls reject with a *_CLOSED code",
      async run() {
        const sink = await fresh();
        await Promise.all([sink.close(), sink.close()]);
        await sink.close();
        assert.equal(sink.status, "closed");
        const isClosed = (err: unknown) =>
          typeof (err as { code?: unknown }).code === "string" &&
          (err as { code: string }).code.endsWith("_CLOSED");
        await assert.rejects(sink.write(makeRecords(1, 400)), isClosed);
        await assert.rejects(sink.flush(), isClosed);
        assert.deepEqual(await readBack(), []);
      },
    },
    {
      name: "Symbol.asyncDispose closes the sink",
      async run() {
        const sink = await fresh();
        const dispose = (sink as unknown as Partial<AsyncDisposable>)[Symbol.asyncDispose];
        assert.equal(typeof dispose, "function", "sink must implement [Symbol.asyncDispose]");
        const records = makeRecords(3, 500);
        await sink.write(records);
        await dispose!.call(sink);
        assert.equal(sink.status, "closed");
        assert.deepEqual(sorted(await readBack()), ids(records));
      },
    },
    {
      name: "writes beyond the buffer bound wait, then every record arrives once",
      async run() {
        const sink = await fresh();
        try {
          const records = makeRecords(70, 600);
          const writes = [];
          for (let i = 0; i < records.length; i += 10)
            writes.push(sink.write(records.slice(i, i + 10)));
          await Promise.all(writes);
          await sink.flush();
          assert.deepEqual(sorted(await readBack()), ids(records));
        } finally {
          await closeQuietly(sink);
        }
      },
    },
  ];
}
