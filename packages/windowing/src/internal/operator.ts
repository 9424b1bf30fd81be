// The stateful step of a job, behind one interface: the window processor is
// one operator, stream joins and pattern detection are others. The Kafka
// runtime and the TestDriver only feed records, advance stream time, drain
// state mutations for the changelog and restore from them.
import type { WindowResult } from "../window-result.js";
import { WindowingError } from "../windowing-error.js";
import { MinHeap } from "./min-heap.js";
import type { ProcessorOutput, StateMutation, StoredMeta, StoredWindow } from "./processor.js";
import type { WindowLogEntry } from "./window-log.js";

/** One buffered element of operator state, as stored in the changelog. */
export interface BufferedEntry {
  t: number;
  v: unknown;
}

/** What the runtime and the TestDriver need from a stateful step. */
export interface StateOperator {
  readonly partition: number;
  readonly streamTime: number;
  /** Open windows, buffered keys or partial matches (for metrics). */
  readonly openWindows: number;
  process(
    key: string,
    value: unknown,
    timestamp: number,
    out: ProcessorOutput<unknown>,
    offset?: string,
  ): void;
  advanceTo(t: number, out: ProcessorOutput<unknown>): void;
  drainMutations(): StateMutation[];
  snapshot(): StateMutation[];
  restore(
    windows: Iterable<StoredWindow>,
    buffers: Iterable<[string, BufferedEntry[]]>,
    meta?: StoredMeta,
    log?: readonly WindowLogEntry[],
  ): void;
  inspect(): {
    key: string;
    windowStart: number;
    windowEnd: number;
    value: unknown;
    emitted: number;
  }[];
}

/** Builds the operator of one partition. */
export type OperatorFactory = (partition: number) => StateOperator;

/**
 * Changelog layout for buffered records that expire with stream time: an
 * append-only log, one entry `<prefix><seq>` per drain (per commit) with the
 * rows written since the previous drain, however many keys they touch. An
 * entry gets a timer at the time all its rows have expired and is deleted
 * (tombstone at the next drain) when it comes due; nothing is written when a
 * single record expires. Restore replays the live entries in sequence order.
 * The prefix doubles as the timer id namespace of the entries, so the
 * operator's other timer ids must not start with it.
 */
export class RecordLog {
  private readonly prefix: string;
  /** Time at which every row with event time <= maxT has expired. */
  private readonly dueAt: (maxT: number) => number;
  private readonly live = new Map<number, BufferedEntry[]>();
  private readonly dead: number[] = [];
  private seq = 0;

  constructor(prefix: string, dueAt: (maxT: number) => number) {
    this.prefix = prefix;
    this.dueAt = dueAt;
  }

  /** Sequence number of the entry the next drain writes. */
  get next(): number {
    return this.seq;
  }

  /** Whether a state or timer id belongs to this log. */
  owns(id: string): boolean {
    return id.startsWith(this.prefix);
  }

  /** An entry's timer came due: all its rows have expired. */
  expire(id: string): void {
    const seq = Number(id.slice(this.prefix.length));
    if (this.live.delete(seq)) this.dead.push(seq);
  }

  /** Mutations of one drain: tombstones of expired entries, then `rows` as a new entry (if any). */
  drain(rows: BufferedEntry[], timers: MinHeap): StateMutation[] {
    const out: StateMutation[] = [];
    for (const seq of this.dead) out.push({ kind: "buffer", key: this.prefix + seq, value: null });
    this.dead.length = 0;
    if (rows.length === 0) return out;
    const seq = this.seq++;
    this.live.set(seq, rows);
    timers.push(this.dueAt(maxTime(rows)), this.prefix + seq);
    out.push({ kind: "buffer", key: this.prefix + seq, value: rows });
    return out;
  }

  /** The live entries, plus `pending` rows under the key the next drain writes. */
  snapshot(pending: BufferedEntry[]): StateMutation[] {
    const out: StateMutation[] = [];
    for (const [seq, rows] of this.live)
      out.push({ kind: "buffer", key: this.prefix + seq, value: rows });
    if (pending.length > 0)
      out.push({ kind: "buffer", key: this.prefix + this.seq, value: pending });
    return out;
  }

  /**
   * Takes this log's entries from restored state; returns them in sequence
   * order (the order they were written) and registers their timers.
   */
  restore(
    buffers: Iterable<[string, BufferedEntry[]]>,
    timers: MinHeap,
  ): [number, BufferedEntry[]][] {
    const logs: [number, BufferedEntry[]][] = [];
    for (const [id, rows] of buffers)
      if (this.owns(id)) logs.push([Number(id.slice(this.prefix.length)), rows]);
    logs.sort((a, b) => a[0] - b[0]);
    for (const [seq, rows] of logs) {
      this.live.set(seq, rows);
      if (seq >= this.seq) this.seq = seq + 1;
      timers.push(this.dueAt(maxTime(rows)), this.prefix + seq);
    }
    return logs;
  }
}

function maxTime(rows: readonly BufferedEntry[]): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const r of rows) if (r.t > m) m = r.t;
  return m;
}

/**
 * Base of the join and pattern operators: state is a map of entry lists
 * (each list one compacted changelog entry, kind `buffer`), plus stream time
 * in the metadata entry; timers on stream time in a min-heap.
 */
export abstract class BufferedOperator implements StateOperator {
  readonly partition: number;
  protected readonly state = new Map<string, BufferedEntry[]>();
  protected readonly timers = new MinHeap();
  private readonly dirty = new Set<string>();
  /** Entries whose latest changelog value is not a tombstone. */
  private readonly persisted = new Set<string>();
  private metaDirty = false;
  private st = Number.NEGATIVE_INFINITY;

  constructor(partition: number) {
    this.partition = partition;
  }

  get streamTime(): number {
    return this.st;
  }

  get openWindows(): number {
    return this.state.size;
  }

  protected get(id: string): BufferedEntry[] | undefined {
    return this.state.get(id);
  }

  /** Replaces (or with an empty list / undefined, deletes) one state entry. */
  protected set(id: string, entries: BufferedEntry[] | undefined): void {
    if (entries && entries.length > 0) this.state.set(id, entries);
    else this.state.delete(id);
    this.dirty.add(id);
  }

  protected checkTime(timestamp: number): void {
    if (!Number.isFinite(timestamp) || timestamp < 0) {
      throw new WindowingError(
        "WINDOWING_INVALID_TIMESTAMP",
        `event time must be a non-negative finite epoch-ms number; got ${String(timestamp)}`,
      );
    }
  }

  /** Moves stream time forward and fires due timers. */
  advanceTo(t: number, out: ProcessorOutput<unknown>): void {
    if (t > this.st) {
      this.st = t;
      this.metaDirty = true;
    }
    for (;;) {
      const at = this.timers.peekAt();
      if (at === undefined || at > this.st) return;
      const { id } = this.timers.pop() as { at: number; id: string };
      this.onTimer(id, out);
    }
  }

  /** A timer registered with `timers.push(at, id)` came due (it may be stale). */
  protected abstract onTimer(id: string, out: ProcessorOutput<unknown>): void;

  /** Re-registers timers of a restored entry. */
  protected abstract onRestore(id: string, entries: BufferedEntry[]): void;

  abstract process(
    key: string,
    value: unknown,
    timestamp: number,
    out: ProcessorOutput<unknown>,
    offset?: string,
  ): void;

  /**
   * Checks the event time, advances stream time with it (firing due timers
   * first, as windows do) and sends the record to the late output when it is
   * more than `graceMs` behind stream time.
   *
   * @returns whether the record is on time and should be processed
   */
  protected admit(
    key: string,
    value: unknown,
    timestamp: number,
    graceMs: number,
    out: ProcessorOutput<unknown>,
    offset?: string,
  ): boolean {
    this.checkTime(timestamp);
    this.advanceTo(timestamp, out);
    if (this.st <= timestamp + graceMs) return true;
    this.late(key, value, timestamp, out, offset);
    return false;
  }

  protected late(
    key: string,
    value: unknown,
    timestamp: number,
    out: ProcessorOutput<unknown>,
    offset?: string,
  ): void {
    const rec: ProcessorOutput<unknown>["late"][number] = {
      key,
      value,
      timestamp,
      streamTime: this.st,
      partition: this.partition,
      closedWindowStarts: [],
    };
    if (offset !== undefined) rec.offset = offset;
    out.late.push(rec);
  }

  protected result(
    key: string,
    start: number,
    end: number,
    value: unknown,
    id: string,
  ): WindowResult<unknown> {
    return {
      key,
      windowStart: start,
      windowEnd: end,
      value,
      final: true,
      emitSeq: 0,
      partition: this.partition,
      id,
    };
  }

  drainMutations(): StateMutation[] {
    const out: StateMutation[] = [];
    for (const id of this.dirty) {
      const entries = this.state.get(id);
      if (entries) {
        this.persisted.add(id);
        out.push({ kind: "buffer", key: id, value: entries.slice() });
      } else if (this.persisted.delete(id)) {
        // an entry created and deleted between two drains never reaches the changelog
        out.push({ kind: "buffer", key: id, value: null });
      }
    }
    this.dirty.clear();
    if (this.metaDirty) out.push({ kind: "meta", value: this.meta() });
    this.metaDirty = false;
    return out;
  }

  private meta(): StoredMeta {
    return { streamTime: Number.isFinite(this.st) ? this.st : null, tick: null };
  }

  snapshot(): StateMutation[] {
    const out: StateMutation[] = [];
    for (const [id, entries] of this.state)
      out.push({ kind: "buffer", key: id, value: entries.slice() });
    out.push({ kind: "meta", value: this.meta() });
    return out;
  }

  restore(
    _windows: Iterable<StoredWindow>,
    buffers: Iterable<[string, BufferedEntry[]]>,
    meta?: StoredMeta,
  ): void {
    for (const [id, entries] of buffers) {
      if (entries.length === 0) continue;
      this.state.set(id, entries);
      this.persisted.add(id);
      this.onRestore(id, entries);
    }
    if (meta) this.st = meta.streamTime ?? Number.NEGATIVE_INFINITY;
  }

  /** State entries as `inspect()` shows them (one list per entry id). */
  protected inspected(): Iterable<[string, BufferedEntry[]]> {
    return this.state.entries();
  }

  inspect(): {
    key: string;
    windowStart: number;
    windowEnd: number;
    value: unknown;
    emitted: number;
  }[] {
    return [...this.inspected()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, entries]) => ({
        key: id,
        windowStart: Math.min(...entries.map((e) => e.t)),
        windowEnd: Math.max(...entries.map((e) => e.t)) + 1,
        value: entries.map((e) => e.v),
        emitted: 0,
      }));
  }
}
