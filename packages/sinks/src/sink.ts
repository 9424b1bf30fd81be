/**
 * Lifecycle state of a {@link Sink}: `open` while it accepts writes, `closing`
 * while `close()` flushes, `closed` afterwards.
 *
 * @since 0.1.0
 */
export type SinkStatus = "open" | "closing" | "closed";

/**
 * The contract between the Sluice runtime and a destination. The runtime calls
 * {@link Sink.write} with results as it produces them and {@link Sink.flush} on
 * every sink before it commits source offsets; after a crash it replays the
 * same records with the same identities, and the sink makes them idempotent.
 *
 * Implementations must:
 * - resolve `write` once the records are accepted into a bounded buffer, and
 *   keep the promise pending while the buffer is full (backpressure);
 * - resolve `flush` only once everything written before the call is durably
 *   acknowledged by the destination (or, if permanently rejected, handed to
 *   the dead-letter handler);
 * - flush in `close`, make `close` idempotent, and reject `write`/`flush`
 *   after close with an error whose `code` ends in `_CLOSED`.
 *
 * Check an implementation with `runSinkConformance` from
 * `@sluice/sinks/test`.
 *
 * @typeParam R - the record type the sink accepts
 * @example
 * ```ts
 * await sink.write(results);   // may wait while the buffer is full
 * await sink.flush();          // before committing source offsets
 * await sink.close();
 * ```
 * @since 0.1.0
 */
export interface Sink<R> {
  /** Name used in logs and metrics labels. */
  readonly name: string;
  /** Lifecycle state. */
  readonly status: SinkStatus;
  /**
   * Buffers records; resolves once they are accepted into the bounded buffer.
   *
   * @param records - records to deliver, in order
   * @returns resolves when accepted (awaits while the buffer is full)
   * @throws SinkError `SINK_CLOSED` after close; the sticky failure of a sink that failed permanently
   */
  write(records: readonly R[]): Promise<void>;
  /**
   * Resolves once everything written so far is durably acknowledged.
   *
   * @returns resolves when acknowledged
   * @throws SinkError `SINK_CLOSED` after close; `SINK_REJECTED` / `SINK_RETRIES_EXHAUSTED` on failure
   */
  flush(): Promise<void>;
  /**
   * Flushes, then releases resources. Idempotent.
   *
   * @returns resolves when closed
   */
  close(): Promise<void>;
}

/**
 * A {@link Sink} that can be used with `await using`.
 *
 * @typeParam R - the record type the sink accepts
 * @since 0.1.0
 */
export interface DisposableSink<R> extends Sink<R> {
  /** Same as {@link Sink.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A record the destination refused permanently, handed to the dead-letter
 * handler together with the error.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface DeadLetter<R> {
  /** The rejected record, exactly as written. */
  record: R;
  /** The record's deterministic identity. */
  id: string;
  /** Why the destination refused it. */
  error: Error;
  /** Stable code of the error, e.g. `CLICKHOUSE_27` or `REDIS_WRONGTYPE`. */
  code: string;
}

/**
 * Receives permanently rejected records. Resolve once they are stored
 * durably (a Kafka DLQ topic, a file); rejecting fails the sink.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export type DeadLetterHandler<R> = (letters: readonly DeadLetter<R>[]) => void | Promise<void>;
