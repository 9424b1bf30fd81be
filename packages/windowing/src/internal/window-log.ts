// Changelog layout of window state: an append-only log. Each drain (each
// commit) writes the windows changed since the previous drain as one entry
// `["l", seq]` per partition (split in several entries past ~256k characters),
// however many windows they are. Nothing is written when a window closes by
// stream time: a restore drops every window whose closeAt is at or before the
// restored stream time, which commits with the same drain. A window removed
// otherwise (a session merged into another) gets a delete marker in the next
// entry, kept while an older live entry still holds a value of that window.
// An entry is deleted (tombstone) once it is no longer the latest word on any
// open window and none of its markers is still needed. Restore replays the
// live entries in sequence order.
import type { StateMutation, StoredWindow } from "./processor.js";

/** One entry of the window log, as restored from the changelog. */
export interface WindowLogEntry {
  seq: number;
  /** Latest values of the windows changed in this drain. */
  w: StoredWindow[];
  /** Windows deleted otherwise than by closing, as `[key, start]`. */
  x?: [string, number][];
}

/** A window as the log sees it: `seq` is the entry holding its latest value. */
export interface LoggedWindow {
  seq?: number | undefined;
}

interface LiveEntry {
  /** Open windows whose latest value is in this entry. */
  refs: number;
  /** Ids of the windows deleted by this entry's markers. */
  markers?: string[];
  /** Ids of the windows this entry holds values of (only when tracking mentions). */
  ids?: string[];
}

const SEP = "\u0000";
/** Entries are split past this many characters of JSON (the broker's default limit is 1 MiB). */
const MAX_ENTRY_CHARS = 256 * 1024;

function idOf(key: string, start: number): string {
  return `${start}${SEP}${key}`;
}

function keyStart(id: string): [string, number] {
  const cut = id.indexOf(SEP);
  return [id.slice(cut + 1), Number(id.slice(0, cut))];
}

export class WindowLog {
  private readonly live = new Map<number, LiveEntry>();
  /** Live entries with no open window's latest value: deleted at a drain once their markers are not needed. */
  private readonly idle = new Set<number>();
  /**
   * Only when windows can be removed otherwise than by closing (sessions):
   * window id -> live entries holding a value of it, ascending.
   */
  private readonly mentions: Map<string, number[]> | undefined;
  /** Per-window changelog keys of the earlier format, deleted at the next drain. */
  private legacy: [string, number][] = [];
  private seq = 0;

  constructor(removals: boolean) {
    this.mentions = removals ? new Map() : undefined;
  }

  /** The window's stored value is no longer the latest word (it changed, closed or was removed). */
  release(w: LoggedWindow): void {
    const seq = w.seq;
    if (seq === undefined) return;
    w.seq = undefined;
    const entry = this.live.get(seq);
    if (entry && --entry.refs === 0) this.idle.add(seq);
  }

  /** Whether a window removed otherwise than by closing needs a delete marker. */
  needsMarker(id: string): boolean {
    return this.mentions?.has(id) === true;
  }

  /**
   * The mutations of one drain: new entries holding the `dirty` windows
   * (`null` = removed: a delete marker when an entry still holds the
   * window), then tombstones of entries no longer needed and of keys of the
   * earlier format.
   */
  drain<E extends LoggedWindow>(
    dirty: ReadonlyMap<string, E | null>,
    encode: (e: E) => StoredWindow,
  ): StateMutation[] {
    const out: StateMutation[] = [];
    // Values written now supersede the ones in older entries; deleting
    // those first means markers are written only where still needed.
    for (const e of dirty.values()) if (e !== null) this.release(e);
    const dead = this.collect();
    let parts: string[] = [];
    let chars = 0;
    let markers: string[] | undefined;
    let entry: LiveEntry = { refs: 0 };
    const flush = () => {
      const seq = this.seq++;
      let x = "";
      if (markers) {
        entry.markers = markers;
        x = `,"x":${JSON.stringify(markers.map(keyStart))}`;
      }
      this.live.set(seq, entry);
      if (entry.refs === 0) this.idle.add(seq);
      out.push({ kind: "log", seq, value: `{"w":[${parts.join(",")}]${x}}` });
      parts = [];
      chars = 0;
      markers = undefined;
      entry = { refs: 0 };
    };
    for (const [id, e] of dirty) {
      if (e === null) {
        if (!this.needsMarker(id)) continue;
        if (markers) markers.push(id);
        else markers = [id];
        continue;
      }
      const json = JSON.stringify(encode(e));
      if (chars > 0 && chars + json.length > MAX_ENTRY_CHARS) flush();
      parts.push(json);
      chars += json.length + 1;
      e.seq = this.seq;
      entry.refs++;
      this.mention(entry, id, this.seq);
    }
    if (parts.length > 0 || markers) flush();
    for (const seq of dead) out.push({ kind: "log", seq, value: null });
    for (const [key, start] of this.legacy)
      out.push({ kind: "window", key, start, end: 0, value: null });
    this.legacy = [];
    return out;
  }

  /** Deletes the idle entries whose markers are no longer needed; returns their sequence numbers. */
  private collect(): number[] {
    const dead: number[] = [];
    if (this.idle.size === 0) return dead;
    // Ascending: deleting an entry can free the markers of later ones.
    for (const seq of [...this.idle].sort((a, b) => a - b)) {
      const e = this.live.get(seq);
      if (!e || e.refs > 0) {
        this.idle.delete(seq);
        continue;
      }
      if (e.markers?.some((id) => this.olderMention(id, seq))) continue;
      this.kill(seq, e);
      dead.push(seq);
    }
    return dead;
  }

  /** Records that entry `seq` holds a value of window `id` (when removals are tracked). */
  private mention(entry: LiveEntry, id: string, seq: number): void {
    if (!this.mentions) return;
    if (entry.ids) entry.ids.push(id);
    else entry.ids = [id];
    const seqs = this.mentions.get(id);
    if (seqs) seqs.push(seq);
    else this.mentions.set(id, [seq]);
  }

  /** Whether a live entry before `seq` holds a value of window `id`. */
  private olderMention(id: string, seq: number): boolean {
    const seqs = this.mentions?.get(id);
    return seqs !== undefined && (seqs[0] as number) < seq;
  }

  private kill(seq: number, e: LiveEntry): void {
    this.live.delete(seq);
    this.idle.delete(seq);
    if (!this.mentions || !e.ids) return;
    for (const id of e.ids) {
      const seqs = this.mentions.get(id);
      if (!seqs) continue;
      const i = seqs.indexOf(seq);
      if (i >= 0) seqs.splice(i, 1);
      if (seqs.length === 0) this.mentions.delete(id);
    }
  }

  /**
   * Replays restored state: windows of the earlier per-window format first
   * (they were written before any entry), then the live entries in sequence
   * order. Returns every window's latest value with the entry holding it
   * (`undefined` for the earlier format: such windows must be written again).
   * Call `retain` for each window kept, then `restored`.
   */
  replay(
    legacy: Iterable<StoredWindow>,
    entries: readonly WindowLogEntry[],
  ): Map<string, { w: StoredWindow; seq: number | undefined }> {
    const latest = new Map<string, { w: StoredWindow; seq: number | undefined }>();
    for (const w of legacy) {
      latest.set(idOf(w.k, w.s), { w, seq: undefined });
      this.legacy.push([w.k, w.s]);
    }
    const sorted = [...entries].sort((a, b) => a.seq - b.seq);
    for (const { seq, w, x } of sorted) {
      const entry: LiveEntry = { refs: 0 };
      this.live.set(seq, entry);
      if (seq >= this.seq) this.seq = seq + 1;
      if (x && x.length > 0) {
        entry.markers = x.map(([k, s]) => idOf(k, s));
        for (const id of entry.markers) latest.delete(id);
      }
      for (const v of w) {
        const id = idOf(v.k, v.s);
        latest.set(id, { w: v, seq });
        this.mention(entry, id, seq);
      }
    }
    return latest;
  }

  /** A restored open window's latest value is in entry `seq`. */
  retain(w: LoggedWindow, seq: number | undefined): void {
    w.seq = seq;
    if (seq === undefined) return;
    const entry = this.live.get(seq);
    if (entry) entry.refs++;
  }

  /** After `retain`: entries holding no open window's latest value become candidates for deletion. */
  restored(): void {
    for (const [seq, e] of this.live) if (e.refs === 0) this.idle.add(seq);
  }

  /** Live entries (for tests and metrics). */
  get entries(): number {
    return this.live.size;
  }
}
