import type { Duration } from "@sluice/schema";
import type { SourceCodec, SourceOptions } from "./job.js";

/**
 * Which unmatched records a stream–stream join emits: none (`inner`),
 * unmatched left records (`left`), unmatched records of both sides (`outer`).
 *
 * @since 0.2.0
 */
export type JoinType = "inner" | "left" | "outer";

/**
 * The other stream of a stream–stream join.
 *
 * @typeParam R - its record type
 * @since 0.2.0
 */
export interface JoinStream<R> {
  /** Its topic; in a Kafka job it must have as many partitions as the job's source. */
  topic: string;
  /** Decoder/validator of its values; failures go to the job's DLQ. */
  schema: SourceCodec<R>;
  /** Event time, as in the job's source. @defaultValue the record timestamp */
  eventTime?: SourceOptions<R>["eventTime"];
  /** Join key of its records. @defaultValue the record key */
  keyBy?: (value: R) => string;
}

/**
 * Options of `job.join(...)`.
 *
 * @since 0.2.0
 */
export interface StreamJoinOptions<L, R, V> {
  /** Records join when their event times differ by at most this. */
  within: Duration;
  /** Lateness allowed: a record whose event time + grace is behind stream time is late. @defaultValue 0 */
  grace?: Duration;
  /** @defaultValue 'inner' */
  type?: JoinType;
  /** Builds the result value; the missing side of an unmatched record is `null`. @defaultValue `(left, right) => ({ left, right })` */
  select?: (left: L | null, right: R | null) => V;
}

/**
 * The table of a stream–table join: a (compacted) topic whose latest value
 * per key is the row; a `null` value (tombstone) deletes the row.
 *
 * @typeParam R - the row type
 * @since 0.2.0
 */
export interface JoinTable<R> {
  /** Its topic; in a Kafka job it must have as many partitions as the job's source. */
  topic: string;
  /** Decoder/validator of row values. */
  schema: SourceCodec<R>;
}

/**
 * Options of `job.joinTable(...)`.
 *
 * @since 0.2.0
 */
export interface TableJoinOptions<L, R, V> {
  /** `inner` drops records without a row; `left` emits them with `null`. @defaultValue 'inner' */
  type?: "inner" | "left";
  /** Builds the result value. @defaultValue `(value, row) => ({ value, row })` */
  select?: (value: L, row: R | null) => V;
}

/**
 * Default value of a stream–stream join result.
 *
 * @since 0.2.0
 */
export interface Joined<L, R> {
  left: L | null;
  right: R | null;
}

/**
 * Default value of a stream–table join result.
 *
 * @since 0.2.0
 */
export interface Enriched<L, R> {
  value: L;
  row: R | null;
}
