// Pattern detection over one partition's keyed stream. Records are buffered
// per key until stream time has passed their event time + grace (no record
// that is not late can come before them any more), then fed in event-time
// order to a small sequence matcher: one partial match per key, steps matched
// in order with skipping of irrelevant events, optional middle steps, a time
// bound from the first event, and an optional final absence step.
import { type BufferedEntry, BufferedOperator, RecordLog } from "./operator.js";
import type { ProcessorOutput, StateMutation, StoredMeta, StoredWindow } from "./processor.js";

export interface PatternStepConfig {
  name: string;
  where: (value: unknown) => boolean;
  optional: boolean;
}

export interface PatternConfig {
  steps: PatternStepConfig[];
  absent?: { name: string; where: (value: unknown) => boolean };
  withinMs: number;
  graceMs: number;
  select: (match: MatchValue) => unknown;
}

/** The events of a match, in order: step name, event time, value. */
export interface MatchValue {
  events: { step: string; timestamp: number; value: unknown }[];
}

/** A partial match: next step index, first event's occurrence, events so far. */
interface Partial {
  i: number;
  o: number;
  ev: { s: string; t: number; v: unknown }[];
}

const SEP = "\u0000";
const PENDING = `e${SEP}`;
const PARTIAL = `m${SEP}`;
/** Timer ids: `k<key>` for a key, `c<seq>` for a log entry of pending events. */
const KEY = "k";
const LOG = "c";

/** Identity of a match: first event time, its occurrence among same-time events of the key, the key. */
export function matchId(key: string, start: number, occurrence: number): string {
  return `${start}:${occurrence}:${key}`;
}

/**
 * State layout: partial matches are one changelog entry per key (`m SEP key`);
 * events waiting for their grace to pass live in memory per key and in the
 * changelog as an append-only log (one entry per commit, see
 * {@link RecordLog}), so buffering and sealing events writes nothing per
 * key. Restore keeps the logged events not yet sealed at the restored stream
 * time (event time >= stream time - grace), in arrival order.
 */
export class PatternOperator extends BufferedOperator {
  private readonly cfg: PatternConfig;
  /** Events per key not yet sealed, in arrival order. */
  private readonly pending = new Map<string, BufferedEntry[]>();
  /** Events added since the last drain, with their keys. */
  private readonly added: { key: string; e: BufferedEntry }[] = [];
  private readonly log: RecordLog;

  constructor(cfg: PatternConfig, partition: number) {
    super(partition);
    this.cfg = cfg;
    this.log = new RecordLog(LOG, (maxT) => maxT + cfg.graceMs + 1);
  }

  override get openWindows(): number {
    return super.openWindows + this.pending.size;
  }

  process(
    key: string,
    value: unknown,
    timestamp: number,
    out: ProcessorOutput<unknown>,
    offset?: string,
  ): void {
    if (!this.admit(key, value, timestamp, this.cfg.graceMs, out, offset)) return;
    const e: BufferedEntry = { t: timestamp, v: value };
    const list = this.pending.get(key);
    if (list) list.push(e);
    else this.pending.set(key, [e]);
    this.added.push({ key, e });
    this.timers.push(timestamp + this.cfg.graceMs + 1, KEY + key);
  }

  /** Seals the key's events that can no longer be preceded, then checks its deadline. */
  protected onTimer(id: string, out: ProcessorOutput<unknown>): void {
    if (this.log.owns(id)) {
      this.log.expire(id);
      return;
    }
    const key = id.slice(KEY.length);
    const watermark = this.streamTime - this.cfg.graceMs;
    const pending = this.pending.get(key);
    if (pending) {
      const sealed = pending.filter((e) => e.t < watermark);
      if (sealed.length > 0) {
        if (sealed.length === pending.length) this.pending.delete(key);
        else
          this.pending.set(
            key,
            pending.filter((e) => e.t >= watermark),
          );
        sealed.sort((a, b) => a.t - b.t);
        let o = 0;
        for (let i = 0; i < sealed.length; i++) {
          const e = sealed[i] as BufferedEntry;
          o = i > 0 && (sealed[i - 1] as BufferedEntry).t === e.t ? o + 1 : 0;
          this.feed(key, e.t, e.v, o, out);
        }
      }
    }
    const p = this.partial(key);
    if (p) {
      const start = (p.ev[0] as Partial["ev"][number]).t;
      if (watermark > start + this.cfg.withinMs) this.expire(key, p, out);
    }
  }

  private partial(key: string): Partial | undefined {
    return this.get(PARTIAL + key)?.[0]?.v as Partial | undefined;
  }

  private store(key: string, p: Partial | undefined): void {
    this.set(PARTIAL + key, p ? [{ t: (p.ev[0] as Partial["ev"][number]).t, v: p }] : undefined);
  }

  /** The partial match's time bound passed: an absence pattern matched, anything else is dropped. */
  private expire(key: string, p: Partial, out: ProcessorOutput<unknown>): void {
    if (this.cfg.absent && p.i === this.cfg.steps.length) this.emit(key, p, out);
    this.store(key, undefined);
  }

  private emit(key: string, p: Partial, out: ProcessorOutput<unknown>): void {
    const first = p.ev[0] as Partial["ev"][number];
    const last = p.ev[p.ev.length - 1] as Partial["ev"][number];
    const end = this.cfg.absent ? first.t + this.cfg.withinMs + 1 : last.t + 1;
    const match: MatchValue = {
      events: p.ev.map((e) => ({ step: e.s, timestamp: e.t, value: e.v })),
    };
    out.results.push(
      this.result(key, first.t, end, this.cfg.select(match), matchId(key, first.t, p.o)),
    );
  }

  /** One sealed event, in event-time order. */
  private feed(key: string, t: number, v: unknown, o: number, out: ProcessorOutput<unknown>): void {
    const { steps, absent, withinMs } = this.cfg;
    let p = this.partial(key);
    if (p && t - (p.ev[0] as Partial["ev"][number]).t > withinMs) {
      this.expire(key, p, out);
      p = undefined;
    }
    if (p) {
      if (p.i === steps.length) {
        // waiting for the bound to pass without the absent event
        if ((absent as NonNullable<PatternConfig["absent"]>).where(v)) {
          this.store(key, undefined);
          p = undefined;
        } else return;
      } else {
        for (let j = p.i; j < steps.length; j++) {
          const step = steps[j] as PatternStepConfig;
          if (step.where(v)) {
            const next: Partial = { i: j + 1, o: p.o, ev: [...p.ev, { s: step.name, t, v }] };
            if (next.i === steps.length && !absent) {
              this.emit(key, next, out);
              this.store(key, undefined);
            } else this.store(key, next);
            return;
          }
          if (!step.optional) break;
        }
        return;
      }
    }
    const first = steps[0] as PatternStepConfig;
    if (!first.where(v)) return;
    const started: Partial = { i: 1, o, ev: [{ s: first.name, t, v }] };
    if (steps.length === 1 && !absent) {
      this.emit(key, started, out);
      return;
    }
    this.store(key, started);
    this.timers.push(t + withinMs + this.cfg.graceMs + 1, KEY + key);
  }

  /** Logged rows of the events added since the last drain and not sealed yet. */
  private pendingRows(): BufferedEntry[] {
    const watermark = this.streamTime - this.cfg.graceMs;
    const rows: BufferedEntry[] = [];
    for (const { key, e } of this.added) if (e.t >= watermark) rows.push({ t: e.t, v: [key, e.v] });
    return rows;
  }

  override drainMutations(): StateMutation[] {
    const out = super.drainMutations();
    out.push(...this.log.drain(this.pendingRows(), this.timers));
    this.added.length = 0;
    return out;
  }

  override snapshot(): StateMutation[] {
    return [...super.snapshot(), ...this.log.snapshot(this.pendingRows())];
  }

  override restore(
    windows: Iterable<StoredWindow>,
    buffers: Iterable<[string, BufferedEntry[]]>,
    meta?: StoredMeta,
  ): void {
    const all = [...buffers];
    super.restore(
      windows,
      all.filter(([id]) => !this.log.owns(id)),
      meta,
    );
    // events already sealed at the restored stream time were fed to the matcher
    const watermark = this.streamTime - this.cfg.graceMs;
    for (const [, rows] of this.log.restore(all, this.timers)) {
      for (const row of rows) {
        if (row.t < watermark) continue;
        const [key, v] = row.v as [string, unknown];
        const e: BufferedEntry = { t: row.t, v };
        const list = this.pending.get(key);
        if (list) list.push(e);
        else this.pending.set(key, [e]);
        this.timers.push(row.t + this.cfg.graceMs + 1, KEY + key);
      }
    }
  }

  protected override inspected(): Iterable<[string, BufferedEntry[]]> {
    return [
      ...super.inspected(),
      ...[...this.pending].map(([key, list]): [string, BufferedEntry[]] => [PENDING + key, list]),
    ];
  }

  /** Re-registers the deadline of a restored partial match. */
  protected onRestore(id: string, entries: BufferedEntry[]): void {
    const key = id.slice(PARTIAL.length);
    const p = entries[0]?.v as Partial | undefined;
    const start = p?.ev[0]?.t;
    if (start !== undefined)
      this.timers.push(start + this.cfg.withinMs + this.cfg.graceMs + 1, KEY + key);
  }
}
