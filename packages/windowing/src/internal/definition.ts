import type { AnyAggregator } from "../aggregations.js";
import type { Sink } from "../sink.js";
import type { LateRecord, ResolvedEmit, WindowResult } from "../window-result.js";
import type { WindowSpec } from "../windows.js";
import type { OperatorFactory } from "./operator.js";

export type Step =
  | { kind: "filter"; fn: (v: unknown) => boolean }
  | { kind: "map"; fn: (v: unknown) => unknown }
  | { kind: "keyBy"; fn: (v: unknown) => string };

export type ResultTarget =
  | { kind: "sink"; sink: Sink<WindowResult<unknown>> }
  | { kind: "topic"; topic: string }
  | { kind: "callback"; fn: (results: readonly WindowResult<unknown>[]) => void | Promise<void> };

export type LateTarget =
  | { kind: "topic"; topic: string }
  | { kind: "callback"; fn: (late: LateRecord<unknown>) => void | Promise<void> };

export interface Decoder {
  decode(bytes: Buffer): unknown;
}

export interface JobDefinition {
  steps: Step[];
  window?: WindowSpec;
  aggregator?: AnyAggregator<unknown>;
  emit: ResolvedEmit;
  /** Session windows with non-final emit retract merged-away sessions (default true). */
  retractions?: boolean;
  outputs: ResultTarget[];
  late: LateTarget[];
  /** Event time of a decoded source value; undefined = record timestamp. */
  eventTime?: (value: unknown, recordTimestamp: number) => number;
  schema?: Decoder;
  idleCloseMs?: number;
  /** A stateful step other than windows (join, pattern); replaces window + aggregator. */
  operator?: OperatorFactory;
  /** Further source topics (joined stream or table), each with its own decoding and steps. */
  sources?: Record<string, JobDefinition>;
  /** Every record goes through the repartition topic (two sources meet there). */
  repartitionAlways?: boolean;
  /** A null record value is a tombstone (tables), not undecodable. */
  tombstones?: boolean;
}

/** Result of running the stateless steps on one value. */
export type Prepared =
  | { keep: false }
  | { keep: true; key: string; value: unknown; rekeyed: boolean };

export function runSteps(def: JobDefinition, value: unknown, sourceKey: string): Prepared {
  let v = value;
  let key = sourceKey;
  let rekeyed = false;
  for (const s of def.steps) {
    if (s.kind === "filter") {
      if (!s.fn(v)) return { keep: false };
    } else if (s.kind === "map") {
      v = s.fn(v);
    } else {
      const k = s.fn(v);
      key = typeof k === "string" ? k : String(k);
      rekeyed = true;
    }
  }
  return { keep: true, key, value: v, rekeyed: rekeyed || def.repartitionAlways === true };
}
