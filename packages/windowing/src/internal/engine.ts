// Per-partition record handling shared by the Kafka runtime and the
// TestDriver: decode → event time → filter/map/keyBy → windows. Failures of
// decoding or of user functions become DLQ entries; the job keeps running.
import { SluiceError } from "@sluice/schema";
import type { LateRecord, WindowResult } from "../window-result.js";
import { WindowingError } from "../windowing-error.js";
import { type JobDefinition, runSteps } from "./definition.js";
import type { StateOperator } from "./operator.js";
import { PartitionProcessor } from "./processor.js";

/**
 * A record that could not be processed.
 *
 * @since 0.1.0
 */
export interface DeadLetter {
  partition: number;
  offset?: string;
  /** Stable code, e.g. `SCHEMA_INVALID_EVENT` or `WINDOWING_INVALID_TIMESTAMP`. */
  code: string;
  /** Human-readable reason. */
  reason: string;
  /** The record's key, as received. */
  key: string | null;
  /** The raw value when it came as bytes, else the decoded value. */
  value: unknown;
}

export interface EngineOutput {
  results: WindowResult<unknown>[];
  late: LateRecord<unknown>[];
  dlq: DeadLetter[];
}

/** A record after stateless steps whose key changed: it must be repartitioned. */
export interface Rekeyed {
  key: string;
  value: unknown;
  timestamp: number;
}

function errorInfo(err: unknown): { code: string; reason: string } {
  if (SluiceError.isInstance(err)) return { code: err.code, reason: err.message };
  return {
    code: "WINDOWING_USER_FUNCTION_FAILED",
    reason: err instanceof Error ? err.message : String(err),
  };
}

export class PartitionEngine {
  readonly processor: StateOperator;
  readonly partition: number;
  private readonly def: JobDefinition;
  private lastActivityWall: number | undefined;
  private streamTimeAtActivity = Number.NEGATIVE_INFINITY;

  constructor(def: JobDefinition, partition: number) {
    this.def = def;
    this.partition = partition;
    this.processor = def.operator
      ? def.operator(partition)
      : new PartitionProcessor(
          {
            window: def.window as NonNullable<JobDefinition["window"]>,
            aggregator: def.aggregator as NonNullable<JobDefinition["aggregator"]>,
            emit: def.emit,
            retractions: def.retractions !== false,
          },
          partition,
        );
  }

  /** Decodes raw bytes with the source schema (or passes non-bytes through). */
  decode(
    raw: unknown,
    key: string | null,
    offset: string | undefined,
    out: EngineOutput,
  ): { ok: boolean; value?: unknown } {
    if (!this.def.schema) return { ok: true, value: raw };
    if (this.def.tombstones && (raw === null || raw === undefined))
      return { ok: true, value: null };
    const bytes =
      raw === null || raw === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(raw)
          ? raw
          : Buffer.from(String(raw));
    try {
      return { ok: true, value: this.def.schema.decode(bytes) };
    } catch (err) {
      this.dead(err, key, bytes, offset, out);
      return { ok: false };
    }
  }

  private dead(
    err: unknown,
    key: string | null,
    value: unknown,
    offset: string | undefined,
    out: EngineOutput,
  ): void {
    const { code, reason } = errorInfo(err);
    const d: DeadLetter = { partition: this.partition, code, reason, key, value };
    if (offset !== undefined) d.offset = offset;
    out.dlq.push(d);
  }

  /**
   * Runs event time and stateless steps on a decoded value. Returns the
   * record to repartition when `keyBy` changed the key and `repartition` is
   * requested; otherwise processes it here.
   */
  handleValue(
    value: unknown,
    key: string | null,
    recordTimestamp: number,
    offset: string | undefined,
    out: EngineOutput,
    repartition: boolean,
    wallNow?: number,
  ): Rekeyed | undefined {
    let t: number;
    let prepared: ReturnType<typeof runSteps>;
    try {
      t = this.def.eventTime ? this.def.eventTime(value, recordTimestamp) : recordTimestamp;
      if (!Number.isFinite(t) || t < 0) {
        throw new WindowingError(
          "WINDOWING_INVALID_TIMESTAMP",
          `event time must be a non-negative finite epoch-ms number; got ${String(t)}`,
        );
      }
      prepared = runSteps(this.def, value, key ?? "");
    } catch (err) {
      this.dead(err, key, value, offset, out);
      return undefined;
    }
    if (!prepared.keep) return undefined;
    if (repartition && prepared.rekeyed)
      return { key: prepared.key, value: prepared.value, timestamp: t };
    this.processKeyed(prepared.key, prepared.value, t, offset, out, wallNow);
    return undefined;
  }

  /** Folds an already keyed value (after the repartition hop). */
  processKeyed(
    key: string,
    value: unknown,
    timestamp: number,
    offset: string | undefined,
    out: EngineOutput,
    wallNow?: number,
  ): void {
    try {
      this.processor.process(key, value, timestamp, out, offset);
    } catch (err) {
      this.dead(err, key, value, offset, out);
    }
    if (wallNow !== undefined) this.noteActivity(wallNow);
  }

  noteActivity(wallNow: number): void {
    this.lastActivityWall = wallNow;
    this.streamTimeAtActivity = this.processor.streamTime;
  }

  /**
   * With `idleCloseMs`, once no record arrived for that long, stream time
   * follows the wall clock from the last record's stream time.
   */
  idleAdvance(wallNow: number, out: EngineOutput): void {
    const idle = this.def.idleCloseMs;
    if (idle === undefined) return;
    if (this.lastActivityWall === undefined) {
      this.noteActivity(wallNow);
      return;
    }
    const quiet = wallNow - this.lastActivityWall;
    if (quiet < idle || !Number.isFinite(this.streamTimeAtActivity)) return;
    this.processor.advanceTo(this.streamTimeAtActivity + quiet, out);
  }
}
