import { parseDuration } from "@sluice/schema";
import type { DeadLetter, DisposableSink, SinkStatus } from "../sink.js";
import { SinkError } from "../sink-error.js";
import type { BatchingOptions } from "../sink-options.js";
import { backoffDelay, type ResolvedRetry, sleep } from "./backoff.js";
import { publishBatch, publishBuffer, publishDlq, publishRetry } from "./channels.js";
import { defaultIdentity } from "./identity.js";

/** A buffered record with what the driver prepared for it. */
export interface Entry<R, P> {
  record: R;
  id: string;
  bytes: number;
  payload: P;
}

/** How an error should be handled. */
export interface Classified {
  retryable: boolean;
  code: string;
  /** Permanent and not caused by any one record (unknown table, auth): fail the sink, no bisection. */
  fatal?: boolean;
  /** Multiplier on the backoff base, e.g. for TOO_MANY_PARTS. */
  slowdown?: number;
  /**
   * Retryable only for this long (ms), counted from the first of an unbroken
   * run of such answers for a batch; then the sink fails (`SINK_REJECTED`).
   * For answers a restarting destination gives for a moment but that are
   * otherwise permanent, such as ClickHouse's unknown table while a server
   * starts or shuts down. 0 fails at the first answer.
   */
  retryForMs?: number;
  /** What to do, appended to the error when this failure fails the sink. */
  advice?: string;
}

/** The destination-specific half of a sink. */
export interface SinkDriver<R, P> {
  readonly kind: string;
  /**
   * Batches sent concurrently. Acknowledgements still advance in write
   * order. Must be 1 where order matters (sequence fencing). @defaultValue 1
   */
  readonly maxInFlight?: number;
  /** Encodes one record; throws `SINK_INVALID_RECORD` when it cannot. */
  prepare(record: R, id: string): P;
  /** Approximate encoded size of a prepared record. */
  sizeOf(payload: P): number;
  /**
   * Sends one batch; resolves when the destination acknowledged it. May
   * return records the destination refused individually while applying the
   * rest (they go to the dead-letter handler, never retried).
   */
  send(batch: readonly Entry<R, P>[]): Promise<RecordRejection[] | undefined>;
  classify(error: unknown): Classified;
  /**
   * True when two consecutive records must travel in the same batch (for
   * example, records sharing a fencing sequence); batch cuts move past them.
   */
  together?(previous: P, next: P): boolean;
  /** Releases connections the sink owns. */
  release(): Promise<void>;
  /** Round trip to the destination; throws when it cannot be reached. */
  ping(): Promise<void>;
}

/** One record of a batch the destination refused while applying the others. */
export interface RecordRejection {
  index: number;
  error: Error;
  code: string;
}

interface Waiter {
  target: number;
  resolve(): void;
  reject(err: unknown): void;
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" ||
    !(value >= 1) ||
    (Number.isFinite(value) && !Number.isInteger(value))
  ) {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      `${name} must be a positive integer; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function wrapDuration(
  value: Parameters<typeof parseDuration>[0] | undefined,
  name: string,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  try {
    return parseDuration(value, name);
  } catch (err) {
    throw new SinkError("SINK_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
}

/** Defaults that differ per sink. */
export interface BatchingDefaults {
  name: string;
  maxBatchRows: number;
}

/**
 * The common engine: a bounded in-order buffer, deterministic batch cuts, up
 * to `driver.maxInFlight` batches in flight with acknowledgements in write
 * order, retries with backoff and jitter, bisection of permanently rejected
 * batches down to single records for the dead-letter handler.
 */
export class BatchingSink<R, P> implements DisposableSink<R> {
  readonly name: string;
  #status: SinkStatus = "open";
  readonly #driver: SinkDriver<R, P>;
  readonly #identity: (record: R) => string;
  readonly #maxBatchRows: number;
  readonly #maxBatchBytes: number;
  readonly #maxDelayMs: number;
  readonly #maxBufferedRows: number;
  readonly #retry: ResolvedRetry;
  readonly #deadLetter: BatchingOptions<R>["deadLetter"];
  readonly #buffer: Entry<R, P>[] = [];
  #bufferBytes = 0;
  #inflightRows = 0;
  #enqueued = 0;
  #acked = 0;
  #flushTarget = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerFired = false;
  readonly #maxInFlight: number;
  readonly #pending: Array<{ rows: number; done: boolean }> = [];
  #active = 0;
  #failure: Error | undefined;
  #flushWaiters: Waiter[] = [];
  #spaceWaiters: Array<() => void> = [];
  #closing: Promise<void> | undefined;

  constructor(driver: SinkDriver<R, P>, options: BatchingOptions<R>, defaults: BatchingDefaults) {
    this.#driver = driver;
    if (options.name !== undefined && (typeof options.name !== "string" || options.name === "")) {
      throw new SinkError(
        "SINK_INVALID_OPTIONS",
        `name must be a non-empty string; got ${JSON.stringify(options.name)}`,
      );
    }
    this.name = options.name ?? defaults.name;
    this.#identity =
      options.identity ??
      ((r: R) => {
        const id = defaultIdentity(r);
        if (id === undefined) {
          throw new SinkError(
            "SINK_INVALID_RECORD",
            "record has no identity: give it a string `id` or `partition` + `offset`, or pass the `identity` option",
          );
        }
        return id;
      });
    this.#maxInFlight = driver.maxInFlight ?? 1;
    this.#maxBatchRows = positiveInt(options.maxBatchRows, "maxBatchRows", defaults.maxBatchRows);
    this.#maxBatchBytes = positiveInt(options.maxBatchBytes, "maxBatchBytes", 8 * 1024 * 1024);
    this.#maxDelayMs = wrapDuration(options.maxDelayMs, "maxDelayMs", 1000);
    this.#maxBufferedRows = positiveInt(options.maxBufferedRows, "maxBufferedRows", 100_000);
    if (this.#maxBufferedRows < this.#maxBatchRows) {
      throw new SinkError(
        "SINK_INVALID_OPTIONS",
        `maxBufferedRows (${this.#maxBufferedRows}) must be at least maxBatchRows (${this.#maxBatchRows})`,
      );
    }
    const r = options.retry ?? {};
    const multiplier = r.multiplier ?? 2;
    if (typeof multiplier !== "number" || !(multiplier >= 1)) {
      throw new SinkError(
        "SINK_INVALID_OPTIONS",
        `retry.multiplier must be ≥ 1; got ${JSON.stringify(multiplier)}`,
      );
    }
    this.#retry = {
      initialDelayMs: wrapDuration(r.initialDelayMs, "retry.initialDelayMs", 100),
      maxDelayMs: wrapDuration(r.maxDelayMs, "retry.maxDelayMs", 10_000),
      maxAttempts: positiveInt(r.maxAttempts, "retry.maxAttempts", Number.POSITIVE_INFINITY),
      multiplier,
    };
    if (options.deadLetter !== undefined && typeof options.deadLetter !== "function") {
      throw new SinkError("SINK_INVALID_OPTIONS", "deadLetter must be a function");
    }
    this.#deadLetter = options.deadLetter;
  }

  get status(): SinkStatus {
    return this.#status;
  }

  /** Rows accepted but not yet acknowledged (buffered plus in flight). */
  get bufferedRows(): number {
    return this.#buffer.length + this.#inflightRows;
  }

  /**
   * Whether the sink can deliver: open, not failed, and the destination
   * answers a round trip. Never throws.
   */
  async health(): Promise<{ ok: boolean; detail: string }> {
    if (this.#status !== "open") return { ok: false, detail: `sink is ${this.#status}` };
    if (this.#failure) return { ok: false, detail: `sink failed: ${this.#failure.message}` };
    try {
      await this.#driver.ping();
    } catch (err) {
      const code = this.#driver.classify(err).code;
      return {
        ok: false,
        detail: `${this.#driver.kind} unreachable (${code}): ${(err as Error)?.message ?? String(err)}`,
      };
    }
    return { ok: true, detail: `${this.bufferedRows} rows buffered` };
  }

  async write(records: readonly R[]): Promise<void> {
    this.#assertOpen("write");
    if (this.#failure) throw this.#failure;
    if (!Array.isArray(records)) {
      throw new SinkError("SINK_INVALID_RECORD", "write expects an array of records");
    }
    // Hot path: one Entry per record, pushed straight into the buffer; on an
    // invalid record without a dead-letter handler the whole call is undone.
    const start = this.#buffer.length;
    const startBytes = this.#bufferBytes;
    let invalid: DeadLetter<R>[] | undefined;
    for (const record of records) {
      let id = "";
      try {
        id = this.#identity(record);
        const payload = this.#driver.prepare(record, id);
        const bytes = this.#driver.sizeOf(payload);
        this.#buffer.push({ record, id, bytes, payload });
        this.#bufferBytes += bytes;
      } catch (err) {
        const error = SinkError.isInstance(err)
          ? err
          : new SinkError(
              "SINK_INVALID_RECORD",
              `record cannot be encoded: ${(err as Error).message}`,
              { cause: err },
            );
        if (!this.#deadLetter) {
          this.#buffer.length = start;
          this.#bufferBytes = startBytes;
          throw error;
        }
        if (!invalid) invalid = [];
        invalid.push({ record, id, error, code: error.code });
      }
    }
    const added = this.#buffer.length - start;
    this.#enqueued += added;
    if (invalid) await this.#toDeadLetter(invalid);
    if (added === 0) return;
    if (this.#buffer.length >= this.#maxBatchRows || this.#bufferBytes >= this.#maxBatchBytes) {
      this.#kick();
    } else {
      this.#armTimer();
    }
    if (this.bufferedRows > this.#maxBufferedRows) {
      this.#publishBuffer(true);
      while (this.bufferedRows > this.#maxBufferedRows && !this.#failure) {
        await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
      }
      if (this.#failure) throw this.#failure;
    }
    this.#publishBuffer(false);
  }

  async flush(): Promise<void> {
    this.#assertOpen("flush");
    return this.#flush();
  }

  #flush(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const target = this.#enqueued;
    if (this.#acked >= target) return Promise.resolve();
    this.#flushTarget = Math.max(this.#flushTarget, target);
    return new Promise<void>((resolve, reject) => {
      this.#flushWaiters.push({ target, resolve, reject });
      this.#kick();
    });
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#status = "closing";
      this.#closing = (async () => {
        try {
          await this.#flush();
        } finally {
          if (this.#timer) clearTimeout(this.#timer);
          this.#timer = undefined;
          try {
            await this.#driver.release();
          } finally {
            this.#status = "closed";
          }
        }
      })();
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(op: string): void {
    if (this.#status !== "open") {
      throw new SinkError(
        "SINK_CLOSED",
        `${op} on sink "${this.name}" after close(); create a new sink`,
      );
    }
  }

  #publishBuffer(backpressure: boolean): void {
    publishBuffer({
      sink: this.#driver.kind,
      name: this.name,
      buffered: this.bufferedRows,
      backpressure,
    });
  }

  #armTimer(): void {
    if (this.#timer || this.#buffer.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerFired = true;
      this.#kick();
    }, this.#maxDelayMs);
    this.#timer.unref();
  }

  /** Launches batches while there is work and an in-flight slot. */
  #kick(): void {
    while (this.#buffer.length > 0 && !this.#failure && this.#active < this.#maxInFlight) {
      const needed = this.#flushTarget > this.#acked + this.#inflightRows;
      const full =
        this.#buffer.length >= this.#maxBatchRows || this.#bufferBytes >= this.#maxBatchBytes;
      if (!full && !needed && !this.#timerFired) break;
      if (!full && !needed) this.#timerFired = false;
      const batch = this.#buffer.splice(0, this.#nextBatchSize());
      for (const e of batch) this.#bufferBytes -= e.bytes;
      const slot = { rows: batch.length, done: false };
      this.#pending.push(slot);
      this.#inflightRows += batch.length;
      this.#active++;
      this.#deliver(batch).then(
        () => {
          this.#active--;
          slot.done = true;
          this.#complete();
        },
        (err: unknown) => {
          this.#active--;
          this.#failure ??= err as Error;
          this.#complete();
        },
      );
    }
    if (this.#buffer.length === 0) this.#timerFired = false;
    else if (!this.#failure) this.#armTimer();
  }

  /** Acknowledges finished batches in write order, then launches more. */
  #complete(): void {
    while (this.#pending[0]?.done) {
      const slot = this.#pending.shift()!;
      this.#acked += slot.rows;
      this.#inflightRows -= slot.rows;
    }
    this.#settle();
    if (!this.#failure) this.#kick();
  }

  #nextBatchSize(): number {
    let rows = 0;
    let bytes = 0;
    for (const e of this.#buffer) {
      if (rows >= this.#maxBatchRows || (rows > 0 && bytes + e.bytes > this.#maxBatchBytes)) break;
      rows++;
      bytes += e.bytes;
    }
    const together = this.#driver.together;
    if (together) {
      const b = this.#buffer;
      while (rows < b.length && together(b[rows - 1]!.payload, b[rows]!.payload)) rows++;
    }
    return rows;
  }

  #settle(): void {
    const waiters = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const w of waiters) {
      if (this.#failure) w.reject(this.#failure);
      else if (this.#acked >= w.target) w.resolve();
      else this.#flushWaiters.push(w);
    }
    if (this.#failure || this.bufferedRows <= this.#maxBufferedRows) {
      const space = this.#spaceWaiters;
      this.#spaceWaiters = [];
      for (const wake of space) wake();
    }
  }

  #publishBatch(rows: number, bytes: number, started: number, error?: string): void {
    const msg = {
      sink: this.#driver.kind,
      name: this.name,
      rows,
      bytes,
      durationMs: performance.now() - started,
    };
    publishBatch(error === undefined ? msg : { ...msg, error });
  }

  /** The error that fails the sink on a permanent, table- or sink-level failure. */
  #fatal(err: unknown, c: Classified, after = ""): Error {
    if (SinkError.isInstance(err)) return err;
    const advice = c.advice ? `; ${c.advice}` : "";
    return new SinkError(
      "SINK_REJECTED",
      `${this.#driver.kind} sink "${this.name}" failed (${c.code})${after}: ${(err as Error)?.message ?? String(err)}${advice}`,
      { cause: err },
    );
  }

  /** Sends a batch until acknowledged; bisects permanent rejections. */
  async #deliver(batch: Entry<R, P>[]): Promise<void> {
    /** Start of the current run of answers retried only for `retryForMs`. */
    let boundedSince: number | undefined;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      let bytes = 0;
      for (const e of batch) bytes += e.bytes;
      try {
        const rejected = await this.#driver.send(batch);
        this.#publishBatch(batch.length, bytes, started);
        if (rejected && rejected.length > 0) {
          const letters = rejected.map((r) => {
            const e = batch[r.index]!;
            return { record: e.record, id: e.id, error: r.error, code: r.code };
          });
          if (!this.#deadLetter) throw this.#rejected(letters[0]!);
          await this.#toDeadLetter(letters);
        }
        return;
      } catch (err) {
        const c = this.#driver.classify(err);
        this.#publishBatch(batch.length, bytes, started, c.code);
        if (c.fatal) throw this.#fatal(err, c);
        if (c.retryForMs === undefined) {
          boundedSince = undefined;
        } else {
          const now = performance.now();
          boundedSince ??= now;
          const elapsedMs = Math.round(now - boundedSince);
          if (elapsedMs >= c.retryForMs) {
            throw this.#fatal(
              err,
              c,
              elapsedMs > 0 ? ` after ${attempt} attempts in ${elapsedMs} ms` : "",
            );
          }
        }
        if (!c.retryable) {
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2);
            await this.#deliver(batch.slice(0, half));
            await this.#deliver(batch.slice(half));
            return;
          }
          const e = batch[0]!;
          const error = err instanceof Error ? err : new Error(String(err));
          const letter = { record: e.record, id: e.id, error, code: c.code };
          if (!this.#deadLetter) throw this.#rejected(letter);
          await this.#toDeadLetter([letter]);
          return;
        }
        if (attempt >= this.#retry.maxAttempts) {
          throw new SinkError(
            "SINK_RETRIES_EXHAUSTED",
            `${this.#driver.kind} sink "${this.name}" gave up after ${attempt} attempts (${c.code}): ${(err as Error)?.message ?? String(err)}`,
            { cause: err, retryable: true },
          );
        }
        const delayMs = backoffDelay(this.#retry, attempt, c.slowdown ?? 1);
        publishRetry({ sink: this.#driver.kind, name: this.name, attempt, delayMs, code: c.code });
        await sleep(delayMs);
      }
    }
  }

  #rejected(letter: DeadLetter<R>): SinkError {
    return new SinkError(
      "SINK_REJECTED",
      `${this.#driver.kind} sink "${this.name}" rejected record ${letter.id} permanently (${letter.code}): ${letter.error.message}; pass a deadLetter handler to divert such records`,
      { cause: letter.error },
    );
  }

  async #toDeadLetter(letters: DeadLetter<R>[]): Promise<void> {
    const handler = this.#deadLetter;
    if (!handler) return;
    try {
      await handler(letters);
    } catch (err) {
      throw new SinkError(
        "SINK_DEAD_LETTER_FAILED",
        `dead-letter handler of sink "${this.name}" failed: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
    const byCode = new Map<string, number>();
    for (const l of letters) byCode.set(l.code, (byCode.get(l.code) ?? 0) + 1);
    for (const [code, count] of byCode) {
      publishDlq({ sink: this.#driver.kind, name: this.name, count, code });
    }
  }
}
