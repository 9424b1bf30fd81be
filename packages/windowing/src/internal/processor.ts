// The pure windowing core for ONE source partition: stream time, window
// assignment, aggregation, emission and closing. No I/O, no clock: the caller
// feeds records and (optionally) advances stream time. The same class runs
// inside the Kafka job and the TestDriver.
import type { AnyAggregator } from "../aggregations.js";
import {
  type LateRecord,
  type ResolvedEmit,
  type WindowResult,
  windowResultId,
} from "../window-result.js";
import { WindowingError } from "../windowing-error.js";
import { fixedWindowStarts, type WindowSpec } from "../windows.js";
import { MinHeap } from "./min-heap.js";
import { WindowLog, type WindowLogEntry } from "./window-log.js";

export interface ProcessorConfig {
  window: WindowSpec;
  aggregator: AnyAggregator<unknown>;
  emit: ResolvedEmit;
  /** Retract merged-away sessions that had results emitted. @defaultValue true */
  retractions?: boolean;
}

/** A replaced session still to be retracted: `[start, end, emitSeq]`. */
type Retraction = [number, number, number];

interface Entry {
  key: string;
  start: number;
  end: number;
  closeAt: number;
  acc: unknown;
  emitted: number;
  dirty: boolean;
  /** The changelog log entry holding this window's latest value, once written. */
  seq?: number | undefined;
  /** Emitted sessions this one replaced, retracted with its next result. */
  retract?: Retraction[] | undefined;
}

interface BufferedRecord {
  t: number;
  v: unknown;
}

/** Serialized window entry, as stored in state and the changelog. */
export interface StoredWindow {
  k: string;
  s: number;
  /** End; left out when it is the start plus the window size (every type but sessions). */
  e?: number;
  /** Close time; left out when it is the end plus the grace (and gap, for sessions). */
  c?: number;
  n: number;
  /** Changed since its last emitted result; left out when not. */
  d?: boolean;
  a: unknown;
  /** Pending retractions (sessions), when any. */
  r?: Retraction[];
}

/** Serialized per-partition metadata. */
export interface StoredMeta {
  streamTime: number | null;
  tick: number | null;
}

/** One state change since the previous drain. */
export type StateMutation =
  | { kind: "window"; key: string; start: number; end: number; value: StoredWindow | null }
  | { kind: "buffer"; key: string; value: BufferedRecord[] | null }
  /** A window log entry (JSON text), or null to delete it. */
  | { kind: "log"; seq: number; value: string | null }
  | { kind: "meta"; value: StoredMeta };

export interface ProcessorOutput<T> {
  results: WindowResult<unknown>[];
  late: LateRecord<T>[];
}

const SEP = "\u0000";
const BUF = "\u0001buf";

function wid(key: string, start: number): string {
  return `${start}${SEP}${key}`;
}

export class PartitionProcessor<T = unknown> {
  readonly partition: number;
  private readonly cfg: ProcessorConfig;
  private readonly agg: AnyAggregator<unknown>;
  private readonly windows = new Map<string, Entry>();
  private readonly byKey = new Map<string, Set<number>>();
  private readonly buffers = new Map<string, BufferedRecord[]>();
  private readonly heap = new MinHeap();
  private readonly changed = new Set<string>();
  private readonly dirtyWindows = new Map<string, Entry | null>();
  /** Changelog entries of window state (see window-log.ts). */
  private readonly log: WindowLog;
  private readonly dirtyBuffers = new Set<string>();
  private metaDirty = false;
  private _streamTime = Number.NEGATIVE_INFINITY;
  private tick = Number.NEGATIVE_INFINITY;

  constructor(cfg: ProcessorConfig, partition: number) {
    this.cfg = cfg;
    this.agg = cfg.aggregator;
    this.partition = partition;
    this.log = new WindowLog(cfg.window.type === "session");
    if (cfg.window.type === "session" && typeof this.agg.merge !== "function") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "session windows need an aggregator with merge(a, b); every built-in has one, add it to your custom aggregator",
      );
    }
  }

  /** Highest event time seen (or advanced to); -Infinity before any record. */
  get streamTime(): number {
    return this._streamTime;
  }

  /** Number of open windows. */
  get openWindows(): number {
    return this.windows.size;
  }

  private get usesKeyIndex(): boolean {
    return this.cfg.window.type === "sliding" || this.cfg.window.type === "session";
  }

  private setStreamTime(t: number, out: ProcessorOutput<T>): void {
    if (t <= this._streamTime) return;
    this._streamTime = t;
    this.metaDirty = true;
    this.closeDue(out);
    if (this.cfg.emit.kind === "every") {
      const tick = Math.floor(t / this.cfg.emit.everyMs);
      if (tick > this.tick) {
        this.tick = tick;
        this.emitChanged(out, true);
      }
    }
  }

  /** Folds one record into its windows; results and late records go to `out`. */
  process(
    key: string,
    value: T,
    timestamp: number,
    out: ProcessorOutput<T>,
    offset?: string,
  ): void {
    if (!Number.isFinite(timestamp) || timestamp < 0) {
      throw new WindowingError(
        "WINDOWING_INVALID_TIMESTAMP",
        `event time must be a non-negative finite epoch-ms number; got ${String(timestamp)}`,
      );
    }
    // Stream time advances first (Kafka Streams does the same): the record's
    // own windows are never closed by it.
    this.setStreamTime(timestamp, out);
    const spec = this.cfg.window;
    if (spec.type === "tumbling" || spec.type === "hopping") {
      let closed: number[] | undefined;
      for (const s of fixedWindowStarts(spec, timestamp)) {
        const end = s + spec.sizeMs;
        const closeAt = end + spec.graceMs;
        if (closeAt <= this._streamTime) {
          if (closed) closed.push(s);
          else closed = [s];
          continue;
        }
        const id = wid(key, s);
        let e = this.windows.get(id);
        if (!e) {
          e = { key, start: s, end, closeAt, acc: this.agg.init(), emitted: 0, dirty: false };
          this.windows.set(id, e);
          this.heap.push(closeAt, id);
        }
        e.acc = this.agg.add(e.acc, value);
        this.touch(id, e);
      }
      if (closed) this.late(key, value, timestamp, closed, out, offset);
    } else if (this._streamTime > timestamp + spec.graceMs) {
      this.late(key, value, timestamp, [], out, offset);
    } else if (spec.type === "sliding") {
      this.slide(key, value, timestamp, spec.sizeMs, spec.graceMs);
    } else {
      this.sessionize(key, value, timestamp, spec.gapMs, spec.graceMs);
    }
    if (this.cfg.emit.kind === "update") this.emitChanged(out, false);
  }

  /** Moves stream time forward (idle partitions, end of input), closing due windows. */
  advanceTo(t: number, out: ProcessorOutput<T>): void {
    this.setStreamTime(t, out);
  }

  private late(
    key: string,
    value: T,
    timestamp: number,
    closedWindowStarts: number[],
    out: ProcessorOutput<T>,
    offset?: string,
  ): void {
    const rec: LateRecord<T> = {
      key,
      value,
      timestamp,
      streamTime: this._streamTime,
      partition: this.partition,
      closedWindowStarts,
    };
    if (offset !== undefined) rec.offset = offset;
    out.late.push(rec);
  }

  private touch(id: string, e: Entry): void {
    this.dirtyWindows.set(id, e);
    if (this.cfg.emit.kind !== "final") {
      e.dirty = true;
      this.changed.add(id);
    }
  }

  private index(key: string, start: number): void {
    let set = this.byKey.get(key);
    if (!set) {
      set = new Set();
      this.byKey.set(key, set);
    }
    set.add(start);
  }

  private unindex(key: string, start: number): void {
    const set = this.byKey.get(key);
    if (!set) return;
    set.delete(start);
    if (set.size === 0) this.byKey.delete(key);
  }

  private slide(key: string, value: T, t: number, size: number, grace: number): void {
    let buf = this.buffers.get(key);
    if (!buf) {
      buf = [];
      this.buffers.set(key, buf);
    }
    buf.push({ t, v: value });
    this.dirtyBuffers.add(key);
    // Reschedule buffer cleanup for after the last window that can use it.
    this.heap.push(t + size + grace + 1, `${BUF}${SEP}${key}`);
    const starts = this.byKey.get(key);
    if (starts) {
      for (const s of starts) {
        if (s <= t && t < s + size) {
          const id = wid(key, s);
          const e = this.windows.get(id) as Entry;
          e.acc = this.agg.add(e.acc, value);
          this.touch(id, e);
        }
      }
    }
    const start = t + 1 - size;
    const id = wid(key, start);
    if (!this.windows.has(id)) {
      let acc = this.agg.init();
      for (const r of buf) if (r.t >= start && r.t <= t) acc = this.agg.add(acc, r.v);
      const e: Entry = {
        key,
        start,
        end: t + 1,
        closeAt: t + 1 + grace,
        acc,
        emitted: 0,
        dirty: false,
      };
      this.windows.set(id, e);
      this.index(key, start);
      this.heap.push(e.closeAt, id);
      this.touch(id, e);
    }
  }

  private sessionize(key: string, value: T, t: number, gap: number, grace: number): void {
    const starts = this.byKey.get(key);
    const hits: Entry[] = [];
    if (starts) {
      for (const s of starts) {
        const e = this.windows.get(wid(key, s)) as Entry;
        if (e.start - gap <= t && t <= e.end - 1 + gap) hits.push(e);
      }
    }
    if (hits.length === 1 && (hits[0] as Entry).start <= t && t < (hits[0] as Entry).end) {
      const e = hits[0] as Entry;
      e.acc = this.agg.add(e.acc, value);
      this.touch(wid(key, e.start), e);
      return;
    }
    hits.sort((a, b) => a.start - b.start);
    let start = t;
    let last = t;
    let acc: unknown;
    let retract: Retraction[] | undefined;
    const merge = this.agg.merge as (a: unknown, b: unknown) => unknown;
    for (const h of hits) {
      start = Math.min(start, h.start);
      last = Math.max(last, h.end - 1);
      acc = acc === undefined ? h.acc : merge(acc, h.acc);
      // A replaced session that was emitted is retracted with the merged
      // session's next result (same commit), as are the ones it replaced.
      if (this.cfg.retractions !== false && (h.emitted > 0 || h.retract)) {
        retract ??= [];
        if (h.retract) retract.push(...h.retract);
        if (h.emitted > 0) retract.push([h.start, h.end, h.emitted]);
      }
      const hid = wid(key, h.start);
      this.windows.delete(hid);
      this.unindex(key, h.start);
      this.changed.delete(hid);
      this.forget(hid, h);
    }
    acc = this.agg.add(acc === undefined ? this.agg.init() : acc, value);
    const e: Entry = {
      key,
      start,
      end: last + 1,
      closeAt: last + gap + grace + 1,
      acc,
      emitted: 0,
      dirty: false,
      retract,
    };
    const id = wid(key, start);
    this.windows.set(id, e);
    this.index(key, start);
    this.heap.push(e.closeAt, id);
    this.touch(id, e);
  }

  /** Pushes the entry's pending retractions, then its next result. */
  private emit(e: Entry, final: boolean, out: ProcessorOutput<T>): void {
    if (e.retract) {
      for (const [start, end, emitSeq] of e.retract) {
        out.results.push({
          key: e.key,
          windowStart: start,
          windowEnd: end,
          value: null,
          final: false,
          emitSeq,
          partition: this.partition,
          id: windowResultId(e.key, start, end, emitSeq),
          retracted: true,
        });
      }
      e.retract = undefined;
    }
    out.results.push(this.result(e, final));
  }

  private result(e: Entry, final: boolean): WindowResult<unknown> {
    const emitSeq = e.emitted++;
    return {
      key: e.key,
      windowStart: e.start,
      windowEnd: e.end,
      value: this.agg.result(e.acc),
      final,
      emitSeq,
      partition: this.partition,
      id: windowResultId(e.key, e.start, e.end, emitSeq),
    };
  }

  private emitChanged(out: ProcessorOutput<T>, sorted: boolean): void {
    if (this.changed.size === 0) return;
    const ids = sorted ? [...this.changed].sort() : this.changed;
    for (const id of ids) {
      const e = this.windows.get(id);
      if (!e) continue;
      e.dirty = false;
      this.emit(e, false, out);
      this.dirtyWindows.set(id, e);
    }
    this.changed.clear();
  }

  private closeDue(out: ProcessorOutput<T>): void {
    for (;;) {
      const at = this.heap.peekAt();
      if (at === undefined || at > this._streamTime) return;
      const { id } = this.heap.pop() as { at: number; id: string };
      if (id.startsWith(BUF)) {
        this.cleanBuffer(id.slice(BUF.length + 1));
        continue;
      }
      const e = this.windows.get(id);
      if (!e || e.closeAt !== at) continue;
      this.emit(e, true, out);
      this.windows.delete(id);
      this.changed.delete(id);
      if (this.usesKeyIndex) this.unindex(e.key, e.start);
      this.closed(id, e);
    }
  }

  /** A window closed by stream time: nothing to write (a restore drops it by its closeAt). */
  private closed(id: string, e: Entry): void {
    this.log.release(e);
    this.dirtyWindows.delete(id);
  }

  /** A window removed by a session merge: a delete marker if the changelog may still hold it. */
  private forget(id: string, e: Entry): void {
    this.log.release(e);
    if (this.log.needsMarker(id)) this.dirtyWindows.set(id, null);
    else this.dirtyWindows.delete(id);
  }

  private cleanBuffer(key: string): void {
    const buf = this.buffers.get(key);
    if (!buf || this.cfg.window.type !== "sliding") return;
    const horizon = this._streamTime - this.cfg.window.graceMs - this.cfg.window.sizeMs;
    const kept = buf.filter((r) => r.t >= horizon);
    if (kept.length === buf.length) return;
    if (kept.length === 0) this.buffers.delete(key);
    else this.buffers.set(key, kept);
    this.dirtyBuffers.add(key);
  }

  /** The state changes since the previous call, encoded for storage. */
  drainMutations(): StateMutation[] {
    const out = this.log.drain(this.dirtyWindows, (e) => this.encode(e));
    for (const key of this.dirtyBuffers) {
      const buf = this.buffers.get(key);
      out.push({ kind: "buffer", key, value: buf ? buf.map((r) => ({ t: r.t, v: r.v })) : null });
    }
    if (this.metaDirty) out.push({ kind: "meta", value: this.meta() });
    this.dirtyWindows.clear();
    this.dirtyBuffers.clear();
    this.metaDirty = false;
    return out;
  }

  private meta(): StoredMeta {
    return {
      streamTime: Number.isFinite(this._streamTime) ? this._streamTime : null,
      tick: Number.isFinite(this.tick) ? this.tick : null,
    };
  }

  /**
   * A window as stored. End and close time are written only when they
   * differ from what the window spec gives (a third of the bytes of a
   * tumbling window, and of the commit's serializing time); a restore
   * derives them from the job's spec.
   */
  private encode(e: Entry): StoredWindow {
    const w: StoredWindow = {
      k: e.key,
      s: e.start,
      n: e.emitted,
      a: this.agg.encode ? this.agg.encode(e.acc) : structuredClone(e.acc),
    };
    if (e.end !== this.specEnd(e.start)) w.e = e.end;
    if (e.closeAt !== e.end + this.closeDelay) w.c = e.closeAt;
    if (e.dirty) w.d = true;
    if (e.retract) w.r = e.retract.map((r) => [r[0], r[1], r[2]]);
    return w;
  }

  /** A window's end as its spec gives it (NaN for sessions, whose end varies). */
  private specEnd(start: number): number {
    const spec = this.cfg.window;
    return spec.type === "session" ? Number.NaN : start + spec.sizeMs;
  }

  /** Close time minus end. */
  private get closeDelay(): number {
    const spec = this.cfg.window;
    return spec.graceMs + (spec.type === "session" ? spec.gapMs : 0);
  }

  /** Every open window and buffer, as mutations (a full snapshot). */
  snapshot(): StateMutation[] {
    const out: StateMutation[] = [];
    if (this.windows.size > 0) {
      const w = JSON.stringify([...this.windows.values()].map((e) => this.encode(e)));
      out.push({ kind: "log", seq: 0, value: `{"w":${w}}` });
    }
    for (const [key, buf] of this.buffers)
      out.push({ kind: "buffer", key, value: buf.map((r) => ({ ...r })) });
    out.push({ kind: "meta", value: this.meta() });
    return out;
  }

  /**
   * Rebuilds from stored state (the latest value of each changelog key): the
   * window log's live entries, windows of the earlier per-window format, the
   * buffers and the metadata. Windows that closed at the restored stream
   * time are dropped (closing writes nothing). Only before processing.
   */
  restore(
    windows: Iterable<StoredWindow>,
    buffers: Iterable<[string, BufferedRecord[]]>,
    meta?: StoredMeta,
    log: readonly WindowLogEntry[] = [],
  ): void {
    if (meta) {
      this._streamTime = meta.streamTime ?? Number.NEGATIVE_INFINITY;
      this.tick = meta.tick ?? Number.NEGATIVE_INFINITY;
    }
    for (const { w, seq } of this.log.replay(windows, log).values()) {
      const end = w.e ?? this.specEnd(w.s);
      const closeAt = w.c ?? end + this.closeDelay;
      if (closeAt <= this._streamTime) continue;
      if (!Number.isFinite(end)) {
        throw new WindowingError(
          "WINDOWING_RESTORE_FAILED",
          `stored session window ${JSON.stringify(w.k)}@${w.s} has no end`,
        );
      }
      const e: Entry = {
        key: w.k,
        start: w.s,
        end,
        closeAt,
        acc: this.agg.decode ? this.agg.decode(w.a) : w.a,
        emitted: w.n,
        dirty: w.d === true,
        retract: w.r && w.r.length > 0 ? w.r.map((r) => [r[0], r[1], r[2]]) : undefined,
      };
      const id = wid(e.key, e.start);
      this.windows.set(id, e);
      this.log.retain(e, seq);
      // a window of the earlier format is written again as a log entry
      if (seq === undefined) this.dirtyWindows.set(id, e);
      if (this.usesKeyIndex) this.index(e.key, e.start);
      this.heap.push(e.closeAt, id);
      if (e.dirty) this.changed.add(id);
    }
    this.log.restored();
    const spec = this.cfg.window;
    for (const [key, buf] of buffers) {
      this.buffers.set(key, buf);
      if (spec.type === "sliding" && buf.length > 0) {
        const maxT = Math.max(...buf.map((r) => r.t));
        this.heap.push(maxT + spec.sizeMs + spec.graceMs + 1, `${BUF}${SEP}${key}`);
      }
    }
  }

  /** Current open windows with their current result values (for inspection). */
  inspect(): {
    key: string;
    windowStart: number;
    windowEnd: number;
    value: unknown;
    emitted: number;
  }[] {
    return [...this.windows.values()]
      .sort((a, b) => a.start - b.start || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((e) => ({
        key: e.key,
        windowStart: e.start,
        windowEnd: e.end,
        value: this.agg.result(e.acc),
        emitted: e.emitted,
      }));
  }
}
