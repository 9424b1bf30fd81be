/**
 * The sink contract of `@sluice/sinks`, accepted structurally (this package
 * does not import `@sluice/sinks`). The job calls `write` with results,
 * `flush()` before it commits source offsets, and `close()` on stop.
 *
 * @typeParam R - the record type written (here, window results)
 * @since 0.1.0
 */
export interface Sink<R> {
  readonly name: string;
  readonly status: "open" | "closing" | "closed";
  /** Buffers; resolves once accepted (awaits when full: backpressure). */
  write(records: readonly R[]): Promise<void>;
  /** Resolves once everything written so far is durably acknowledged. */
  flush(): Promise<void>;
  /** Flushes, then releases; idempotent. */
  close(): Promise<void>;
}

/** True when `value` looks like a {@link Sink}. @internal */
export function isSink(value: unknown): value is Sink<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Sink<unknown>).write === "function" &&
    typeof (value as Sink<unknown>).flush === "function" &&
    typeof (value as Sink<unknown>).close === "function"
  );
}
