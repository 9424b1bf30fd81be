// Join operators for one partition. Input values arrive wrapped by side:
// `{ s: 0, v }` from the job's own source (left / stream), `{ s: 1, v }` from
// the joined stream or table; both sides share the partition through the
// job's repartition topic, so a key's records of both sides meet here.
import { windowResultId } from "../window-result.js";
import { type BufferedEntry, BufferedOperator } from "./operator.js";
import type { ProcessorOutput } from "./processor.js";

export interface Sided {
  s: 0 | 1;
  v: unknown;
}

export interface StreamJoinConfig {
  type: "inner" | "left" | "outer";
  withinMs: number;
  graceMs: number;
  select: (left: unknown, right: unknown) => unknown;
}

/** A buffered record of one side: value, occurrence among same-time records, matched flag. */
interface SideRecord {
  v: unknown;
  o: number;
  m: 0 | 1;
}

const SEP = "\u0000";
/** State entry holding the highest event time seen per side: `[{ t: left, v: right }]`. */
const TIMES = "s";

/** Identity of a join result: both records' event times and occurrence numbers, then the key. */
export function joinResultId(
  key: string,
  left: { t: number; o: number } | undefined,
  right: { t: number; o: number } | undefined,
): string {
  const l = left ? `${left.t}:${left.o}` : "-:-";
  const r = right ? `${right.t}:${right.o}` : "-:-";
  return `${l}:${r}:${key}`;
}

/**
 * Stream–stream windowed join. Records of one key join when their event
 * times differ by at most `within`. A record is late when stream time is
 * past its event time + grace; a buffered record expires once stream time
 * passes its event time + within + grace — then an unmatched left (left and
 * outer joins) or right (outer) record is emitted with `null` on the other
 * side. Every matching pair is emitted exactly once, when its second record
 * arrives, whatever the arrival order.
 */
export class StreamJoinOperator extends BufferedOperator {
  private readonly cfg: StreamJoinConfig;

  constructor(cfg: StreamJoinConfig, partition: number) {
    super(partition);
    this.cfg = cfg;
  }

  process(
    key: string,
    value: unknown,
    timestamp: number,
    out: ProcessorOutput<unknown>,
    offset?: string,
  ): void {
    const { s, v } = value as Sided;
    this.checkTime(timestamp);
    // Stream time is the slower side's: when one topic is read ahead of the
    // other (a backlog, a lagging partition), the other side's records wait
    // in state instead of turning late.
    const times = (this.get(TIMES)?.[0] as { t: number; v: number } | undefined) ?? {
      t: Number.NEGATIVE_INFINITY,
      v: Number.NEGATIVE_INFINITY,
    };
    const next =
      s === 0
        ? { t: Math.max(times.t, timestamp), v: times.v }
        : { t: times.t, v: Math.max(times.v, timestamp) };
    if (next.t !== times.t || next.v !== times.v) this.set(TIMES, [next]);
    this.advanceTo(Math.min(next.t, next.v), out);
    if (this.streamTime > timestamp + this.cfg.graceMs) {
      this.late(key, v, timestamp, out, offset);
      return;
    }
    const own = `${s}${SEP}${key}`;
    const other = `${1 - s}${SEP}${key}`;
    const mine = this.get(own) ?? [];
    let o = 0;
    for (const e of mine) if (e.t === timestamp) o++;
    let matched: 0 | 1 = 0;
    const theirs = this.get(other);
    if (theirs) {
      const within = this.cfg.withinMs;
      let changed = false;
      const next = theirs.map((e) => {
        if (Math.abs(e.t - timestamp) > within) return e;
        const r = e.v as SideRecord;
        matched = 1;
        const me = { t: timestamp, o };
        const them = { t: e.t, o: r.o };
        const [l, rr] = s === 0 ? [me, them] : [them, me];
        const [lv, rv] = s === 0 ? [v, r.v] : [r.v, v];
        out.results.push(
          this.result(
            key,
            Math.min(l.t, rr.t),
            Math.max(l.t, rr.t) + 1,
            this.cfg.select(lv, rv),
            joinResultId(key, l, rr),
          ),
        );
        if (r.m === 1) return e;
        changed = true;
        return { t: e.t, v: { v: r.v, o: r.o, m: 1 } };
      });
      if (changed) this.set(other, next);
    }
    this.set(own, [...mine, { t: timestamp, v: { v, o, m: matched } }]);
    this.timers.push(timestamp + this.cfg.withinMs + this.cfg.graceMs + 1, own);
  }

  protected onTimer(id: string, out: ProcessorOutput<unknown>): void {
    if (id === TIMES) return;
    const entries = this.get(id);
    if (!entries) return;
    const horizon = this.streamTime - this.cfg.withinMs - this.cfg.graceMs;
    const kept: BufferedEntry[] = [];
    const side = id.charAt(0) === "0" ? 0 : 1;
    const key = id.slice(2);
    const emits = side === 0 ? this.cfg.type !== "inner" : this.cfg.type === "outer";
    for (const e of entries) {
      if (e.t >= horizon) {
        kept.push(e);
        continue;
      }
      const r = e.v as SideRecord;
      if (r.m === 0 && emits) {
        const me = { t: e.t, o: r.o };
        out.results.push(
          this.result(
            key,
            e.t,
            e.t + 1,
            side === 0 ? this.cfg.select(r.v, null) : this.cfg.select(null, r.v),
            side === 0 ? joinResultId(key, me, undefined) : joinResultId(key, undefined, me),
          ),
        );
      }
    }
    if (kept.length !== entries.length) this.set(id, kept);
  }

  protected onRestore(id: string, entries: BufferedEntry[]): void {
    if (id === TIMES) return;
    for (const t of new Set(entries.map((e) => e.t)))
      this.timers.push(t + this.cfg.withinMs + this.cfg.graceMs + 1, id);
  }
}

export interface TableJoinConfig {
  type: "inner" | "left";
  select: (value: unknown, row: unknown) => unknown;
}

/**
 * Stream–table join: side 1 is a changelog (compacted topic) whose latest
 * value per key is kept in state, a `null` value (tombstone) deletes it;
 * each stream record joins the table row current when it is processed.
 * Results are identified by the stream record's event time and its sequence
 * number within its key.
 */
export class TableJoinOperator extends BufferedOperator {
  private readonly cfg: TableJoinConfig;

  constructor(cfg: TableJoinConfig, partition: number) {
    super(partition);
    this.cfg = cfg;
  }

  process(key: string, value: unknown, timestamp: number, out: ProcessorOutput<unknown>): void {
    this.checkTime(timestamp);
    const { s, v } = value as Sided;
    this.advanceTo(timestamp, out);
    if (s === 1) {
      this.set(`t${SEP}${key}`, v === null || v === undefined ? undefined : [{ t: timestamp, v }]);
      return;
    }
    const seqId = `n${SEP}${key}`;
    const seq = (this.get(seqId)?.[0]?.v as number | undefined) ?? 0;
    this.set(seqId, [{ t: timestamp, v: seq + 1 }]);
    const row = this.get(`t${SEP}${key}`)?.[0];
    if (!row && this.cfg.type === "inner") return;
    out.results.push(
      this.result(
        key,
        timestamp,
        timestamp + 1,
        this.cfg.select(v, row ? row.v : null),
        windowResultId(key, timestamp, timestamp + 1, seq),
      ),
    );
  }

  protected onTimer(): void {}

  protected onRestore(): void {}
}
