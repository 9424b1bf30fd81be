import type { DeadLetter, EngineOutput } from "./internal/engine.js";
import { PartitionEngine } from "./internal/engine.js";
import { murmur3 } from "./internal/hyperloglog.js";
import { assertComplete, type Job } from "./job.js";
import type { LateRecord, WindowResult } from "./window-result.js";
import { WindowingError } from "./windowing-error.js";

export type { DeadLetter } from "./internal/engine.js";

/**
 * Options of {@link createTestDriver}.
 *
 * @since 0.1.0
 */
export interface TestDriverOptions {
  /** Number of simulated source partitions. @defaultValue 1 */
  partitions?: number;
  /** Initial wall clock (epoch ms) for `idleCloseMs`. @defaultValue 0 */
  wallClock?: number;
}

/**
 * What one piped record carries besides its value.
 *
 * @since 0.1.0
 */
export interface PipeOptions {
  /** Record timestamp (epoch ms); the event time unless the job reads it from the value. @defaultValue the driver's wall clock */
  timestamp?: number;
  /** Record key; the window key unless the job uses `keyBy`. @defaultValue '' */
  key?: string | null;
  /** Source partition. @defaultValue 0 */
  partition?: number;
  /** The topic of a joined stream or table (`join`/`joinTable`) this record comes from. @defaultValue the job's own source */
  source?: string;
}

/**
 * Runs a job definition in-process, synchronously, with no Kafka: the same
 * decoding, event time, `filter`/`map`/`keyBy`, windows, aggregation, emit
 * modes, late and DLQ handling as a Kafka job. `keyBy` routes re-keyed
 * records to partition `murmur3(key) % partitions`, as the repartition topic
 * would. Result targets and `onLate` of the job are not called; read the
 * outputs here instead.
 *
 * @since 0.1.0
 */
export class TestDriver<T, V> {
  private readonly engines: PartitionEngine[];
  private readonly job: Job<T, V>;
  private wall: number;
  private readonly out: EngineOutput = { results: [], late: [], dlq: [] };
  private offsets: number[];
  private closed = false;

  /** @internal use {@link createTestDriver} */
  constructor(job: Job<T, V>, opts: TestDriverOptions = {}) {
    const partitions = opts.partitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `partitions must be an integer >= 1; got ${partitions}`,
      );
    }
    assertComplete(job.definition);
    this.job = job;
    this.wall = opts.wallClock ?? 0;
    this.engines = Array.from(
      { length: partitions },
      (_, p) => new PartitionEngine(job.definition, p),
    );
    this.offsets = Array.from({ length: partitions }, () => 0);
    for (const e of this.engines) e.noteActivity(this.wall);
  }

  /** `'open'` until `close()`, then `'closed'`. */
  get status(): "open" | "closed" {
    return this.closed ? "closed" : "open";
  }

  private check(): void {
    if (this.closed)
      throw new WindowingError("WINDOWING_DRIVER_CLOSED", "the test driver was closed");
  }

  private engine(partition = 0): PartitionEngine {
    const e = this.engines[partition];
    if (!e) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `partition ${partition} does not exist (the driver has ${this.engines.length})`,
      );
    }
    return e;
  }

  private readonly sideEngines = new Map<string, PartitionEngine>();

  /** The decoding/steps engine of a joined source's partition. */
  private sideEngine(source: string, partition: number): PartitionEngine {
    const def = this.job.definition.sources?.[source];
    if (!def) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `source '${source}' is not a joined stream or table of this job`,
      );
    }
    this.engine(partition);
    const k = `${source}\u0000${partition}`;
    let e = this.sideEngines.get(k);
    if (!e) {
      e = new PartitionEngine(def, partition);
      this.sideEngines.set(k, e);
    }
    return e;
  }

  private run(raw: unknown, decoded: boolean, opts: PipeOptions): void {
    this.check();
    const engine =
      opts.source === undefined
        ? this.engine(opts.partition ?? 0)
        : this.sideEngine(opts.source, opts.partition ?? 0);
    const offset = String(this.offsets[engine.partition]);
    this.offsets[engine.partition] = (this.offsets[engine.partition] as number) + 1;
    const key = opts.key === undefined ? "" : opts.key;
    let value = raw;
    if (!decoded) {
      const r = engine.decode(raw, key, offset, this.out);
      if (!r.ok) return;
      value = r.value;
    }
    const rekeyed = engine.handleValue(
      value,
      key,
      opts.timestamp ?? this.wall,
      offset,
      this.out,
      this.engines.length > 1 || this.job.definition.repartitionAlways === true,
      this.wall,
    );
    this.emitLate();
    if (rekeyed) {
      const target = this.engine(murmur3(rekeyed.key) % this.engines.length);
      target.processKeyed(
        rekeyed.key,
        rekeyed.value,
        rekeyed.timestamp,
        undefined,
        this.out,
        this.wall,
      );
      this.emitLate();
    }
  }

  private lateSeen = 0;

  private emitLate(): void {
    const handlers = this.job.definition.late.filter((l) => l.kind === "callback");
    for (; this.lateSeen < this.out.late.length; this.lateSeen++) {
      for (const h of handlers) void h.fn(this.out.late[this.lateSeen] as LateRecord<unknown>);
    }
  }

  /**
   * Feeds one already-decoded record.
   *
   * @param value - the record value (as the source schema would decode it)
   * @param opts - timestamp, key, partition
   * @throws WindowingError `WINDOWING_DRIVER_CLOSED` after close; `WINDOWING_INVALID_OPTIONS` for an unknown partition
   * @example
   * ```ts
   * driver.pipe({ user: "u1", amount: 3 }, { key: "u1", timestamp: 1_000 });
   * ```
   */
  pipe(value: T, opts: PipeOptions = {}): void {
    this.run(value, true, opts);
  }

  /**
   * Feeds raw bytes through the job's source schema, as from Kafka;
   * undecodable or invalid records land in {@link TestDriver.dlq}.
   *
   * @param bytes - the record value
   * @param opts - timestamp, key, partition
   * @throws WindowingError `WINDOWING_DRIVER_CLOSED` after close
   * @example
   * ```ts
   * driver.pipeRaw('{"user":"u1"}', { key: "u1", timestamp: 5 });
   * ```
   */
  pipeRaw(bytes: Buffer | string | null, opts: PipeOptions = {}): void {
    this.run(bytes, false, opts);
  }

  /**
   * Advances stream time of one partition (or all), closing due windows.
   *
   * @param time - new stream time (epoch ms); ignored if not ahead
   * @param partition - one partition; all when omitted
   * @throws WindowingError `WINDOWING_DRIVER_CLOSED` after close
   * @example
   * ```ts
   * driver.advanceStreamTime(Date.UTC(2026, 0, 1, 0, 5));
   * ```
   */
  advanceStreamTime(time: number, partition?: number): void {
    this.check();
    const engines = partition === undefined ? this.engines : [this.engine(partition)];
    for (const e of engines) e.processor.advanceTo(time, this.out);
  }

  /**
   * Advances the simulated wall clock; with the job's `idleCloseMs`, idle
   * partitions' stream time follows it and their windows close.
   *
   * @param ms - milliseconds to add
   * @throws WindowingError `WINDOWING_DRIVER_CLOSED` after close
   * @example
   * ```ts
   * driver.advanceWallClock(60_000);
   * ```
   */
  advanceWallClock(ms: number): void {
    this.check();
    this.wall += ms;
    for (const e of this.engines) e.idleAdvance(this.wall, this.out);
  }

  /**
   * Every result emitted so far, in order, retractions of merged-away
   * sessions included (`retracted: true`, `value: null`).
   */
  get results(): readonly WindowResult<V>[] {
    return this.out.results as WindowResult<V>[];
  }

  /**
   * Returns and forgets the results emitted since the previous call
   * (retractions included, as in {@link TestDriver.results}).
   *
   * @returns the new results
   */
  readResults(): WindowResult<V>[] {
    return this.out.results.splice(0) as WindowResult<V>[];
  }

  /** Late records so far. */
  get late(): readonly LateRecord<T>[] {
    return this.out.late as LateRecord<T>[];
  }

  /** Dead-lettered records so far. */
  get dlq(): readonly DeadLetter[] {
    return this.out.dlq;
  }

  /**
   * Stream time of a partition (`-Infinity` before its first record).
   *
   * @param partition - @defaultValue 0
   * @returns epoch ms
   */
  streamTime(partition = 0): number {
    return this.engine(partition).processor.streamTime;
  }

  /**
   * The open windows of a partition with their current values.
   *
   * @param partition - @defaultValue 0
   * @returns windows sorted by start, then key
   */
  state(
    partition = 0,
  ): { key: string; windowStart: number; windowEnd: number; value: V; emitted: number }[] {
    return this.engine(partition).processor.inspect() as never;
  }

  /** Releases the driver; later calls throw `WINDOWING_DRIVER_CLOSED`. Idempotent. */
  close(): void {
    this.closed = true;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/**
 * Creates a {@link TestDriver} for a job (from `createJob` or `defineJob`).
 *
 * @param job - a job with `window` and `aggregate`
 * @param opts - partitions, initial wall clock
 * @returns the driver
 * @throws WindowingError `WINDOWING_PIPELINE_INCOMPLETE` without window/aggregate
 * @example
 * ```ts
 * const driver = createTestDriver(defineJob<{ n: number }>().window(tumbling({ size: 10 })).aggregate(count()));
 * driver.pipe({ n: 1 }, { key: "a", timestamp: 3 });
 * driver.advanceStreamTime(10);
 * driver.results; // [{ key: "a", windowStart: 0, windowEnd: 10, value: 1, final: true, ... }]
 * ```
 * @since 0.1.0
 */
export function createTestDriver<T, V>(
  job: Job<T, V>,
  opts: TestDriverOptions = {},
): TestDriver<T, V> {
  return new TestDriver(job, opts);
}
