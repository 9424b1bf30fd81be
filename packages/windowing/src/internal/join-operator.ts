// Join operators for one partition. Input values arrive wrapped by side:
// `{ s: 0, v }` from the job's own source (left / stream), `{ s: 1, v }` from
// the joined stream or table; both sides share the partition through the
// job's repartition topic, so a key's records of both sides meet here.
import { windowResultId } from "../window-result.js";
import { type BufferedEntry, BufferedOperator, RecordLog } from "./operator.js";
import type { ProcessorOutput, StateMutation, StoredMeta, StoredWindow } from "./processor.js";

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

/**
 * A buffered record of one side. `d` is the sequence number of the changelog
 * log entry that holds it (-1 until the next drain writes it).
 */
interface Rec {
  id: string;
  t: number;
  v: unknown;
  o: number;
  m: 0 | 1;
  d: number;
}

const SEP = "\u0000";
/** State entry holding the highest event time seen per side: `[{ t: left, v: right }]`. */
const TIMES = "s";
/** Prefix of the log entries (`c<seq>`) and of their expiry timers; key ids start with `0` or `1`. */
const LOG = "c";

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

function finiteOr(x: unknown): number {
  return typeof x === "number" && Number.isFinite(x) ? x : Number.NEGATIVE_INFINITY;
}

/**
 * Stream–stream windowed join. Records of one key join when their event
 * times differ by at most `within`. A record is late when stream time is
 * past its event time + grace; a buffered record expires once stream time
 * passes its event time + within + grace — then an unmatched left (left and
 * outer joins) or right (outer) record is emitted with `null` on the other
 * side. Every matching pair is emitted exactly once, when its second record
 * arrives, whatever the arrival order.
 *
 * State layout: buffered records live in memory per side and key; the
 * changelog holds them as an append-only log, one entry `c<seq>` per drain
 * (per commit) with the records added since the previous drain
 * (`{ t, v: [id, o, m, value] }`) and the earlier records matched since then
 * (`{ t, v: [id, o] }`). So a commit writes one changelog record for its
 * buffered records however many keys they touch, and expiring a record
 * writes nothing: an entry is deleted (tombstone) once stream time has passed
 * the expiry of every record in it. Restore replays the live entries in
 * sequence order and drops records already expired at the restored stream
 * time (their unmatched results went out with the commit that expired them).
 */
export class StreamJoinOperator extends BufferedOperator {
  private readonly cfg: StreamJoinConfig;
  /** Buffered records per `side SEP key`, in arrival order. */
  private readonly bufs = new Map<string, Rec[]>();
  /** Highest event time seen per side. */
  private lt = Number.NEGATIVE_INFINITY;
  private rt = Number.NEGATIVE_INFINITY;
  private timesDirty = false;
  /** Records added since the last drain. */
  private readonly added: Rec[] = [];
  /** Records of earlier log entries matched for the first time since the last drain. */
  private readonly marks: Rec[] = [];
  private readonly log: RecordLog;

  constructor(cfg: StreamJoinConfig, partition: number) {
    super(partition);
    this.cfg = cfg;
    this.log = new RecordLog(LOG, (maxT) => maxT + cfg.withinMs + cfg.graceMs + 1);
  }

  override get openWindows(): number {
    return this.bufs.size;
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
    if (s === 0) {
      if (timestamp > this.lt) {
        this.lt = timestamp;
        this.timesDirty = true;
      }
    } else if (timestamp > this.rt) {
      this.rt = timestamp;
      this.timesDirty = true;
    }
    this.advanceTo(Math.min(this.lt, this.rt), out);
    const { withinMs, graceMs } = this.cfg;
    if (this.streamTime > timestamp + graceMs) {
      this.late(key, v, timestamp, out, offset);
      return;
    }
    const own = (s === 0 ? "0" : "1") + SEP + key;
    const mine = this.bufs.get(own);
    let o = 0;
    if (mine) for (let i = 0; i < mine.length; i++) if ((mine[i] as Rec).t === timestamp) o++;
    let matched: 0 | 1 = 0;
    const theirs = this.bufs.get((s === 0 ? "1" : "0") + SEP + key);
    if (theirs) {
      for (let i = 0; i < theirs.length; i++) {
        const e = theirs[i] as Rec;
        if (Math.abs(e.t - timestamp) > withinMs) continue;
        matched = 1;
        const me = { t: timestamp, o };
        const l = s === 0 ? me : e;
        const r = s === 0 ? e : me;
        out.results.push(
          this.result(
            key,
            Math.min(l.t, r.t),
            Math.max(l.t, r.t) + 1,
            s === 0 ? this.cfg.select(v, e.v) : this.cfg.select(e.v, v),
            joinResultId(key, l, r),
          ),
        );
        if (e.m === 0) {
          e.m = 1;
          // a record already in the changelog needs its matched flag there too
          if (e.d >= 0) this.marks.push(e);
        }
      }
    }
    const rec: Rec = { id: own, t: timestamp, v, o, m: matched, d: -1 };
    if (mine) mine.push(rec);
    else this.bufs.set(own, [rec]);
    this.added.push(rec);
    this.timers.push(timestamp + withinMs + graceMs + 1, own);
  }

  protected onTimer(id: string, out: ProcessorOutput<unknown>): void {
    if (this.log.owns(id)) {
      this.log.expire(id);
      return;
    }
    const recs = this.bufs.get(id);
    if (!recs) return;
    const horizon = this.streamTime - this.cfg.withinMs - this.cfg.graceMs;
    const side = id.charAt(0) === "0" ? 0 : 1;
    const emits = side === 0 ? this.cfg.type !== "inner" : this.cfg.type === "outer";
    let kept = 0;
    for (let i = 0; i < recs.length; i++) {
      const e = recs[i] as Rec;
      if (e.t >= horizon) {
        recs[kept++] = e;
        continue;
      }
      if (e.m === 0 && emits) {
        const key = id.slice(2);
        const me = { t: e.t, o: e.o };
        out.results.push(
          this.result(
            key,
            e.t,
            e.t + 1,
            side === 0 ? this.cfg.select(e.v, null) : this.cfg.select(null, e.v),
            side === 0 ? joinResultId(key, me, undefined) : joinResultId(key, undefined, me),
          ),
        );
      }
    }
    if (kept === 0) this.bufs.delete(id);
    else recs.length = kept;
  }

  protected onRestore(): void {}

  /** Rows of the log entry the next drain writes; records expired before it are left out. */
  private pendingRows(seq: number | undefined): BufferedEntry[] {
    const horizon = this.streamTime - this.cfg.withinMs - this.cfg.graceMs;
    const rows: BufferedEntry[] = [];
    for (const r of this.added) {
      if (r.t < horizon) continue;
      if (seq !== undefined) r.d = seq;
      rows.push({ t: r.t, v: [r.id, r.o, r.m, r.v] });
    }
    for (const r of this.marks) if (r.t >= horizon) rows.push({ t: r.t, v: [r.id, r.o] });
    return rows;
  }

  override drainMutations(): StateMutation[] {
    const out = super.drainMutations();
    if (this.timesDirty) {
      out.push({ kind: "buffer", key: TIMES, value: [{ t: this.lt, v: this.rt }] });
      this.timesDirty = false;
    }
    out.push(...this.log.drain(this.pendingRows(this.log.next), this.timers));
    this.added.length = 0;
    this.marks.length = 0;
    return out;
  }

  override snapshot(): StateMutation[] {
    const out = super.snapshot();
    out.push({ kind: "buffer", key: TIMES, value: [{ t: this.lt, v: this.rt }] });
    out.push(...this.log.snapshot(this.pendingRows(undefined)));
    return out;
  }

  override restore(
    windows: Iterable<StoredWindow>,
    buffers: Iterable<[string, BufferedEntry[]]>,
    meta?: StoredMeta,
  ): void {
    super.restore(windows, [], meta);
    const { withinMs, graceMs } = this.cfg;
    const all = [...buffers];
    for (const [id, entries] of all) {
      if (id !== TIMES) continue;
      this.lt = finiteOr(entries[0]?.t);
      this.rt = finiteOr(entries[0]?.v);
    }
    const horizon = this.streamTime - withinMs - graceMs;
    for (const [seq, rows] of this.log.restore(all, this.timers)) {
      for (const row of rows) {
        // expired at the restored stream time: already emitted if unmatched
        if (row.t < horizon) continue;
        const x = row.v as [string, number, (0 | 1)?, unknown?];
        const id = x[0];
        const list = this.bufs.get(id);
        if (x.length === 2) {
          const rec = list?.find((r) => r.t === row.t && r.o === x[1]);
          if (rec) rec.m = 1;
          continue;
        }
        const rec: Rec = { id, t: row.t, v: x[3], o: x[1], m: x[2] === 1 ? 1 : 0, d: seq };
        if (list) list.push(rec);
        else this.bufs.set(id, [rec]);
        this.timers.push(row.t + withinMs + graceMs + 1, id);
      }
    }
  }

  protected override inspected(): Iterable<[string, BufferedEntry[]]> {
    return [...this.bufs].map(([id, recs]) => [
      id,
      recs.map((r) => ({ t: r.t, v: { v: r.v, o: r.o, m: r.m } })),
    ]);
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
