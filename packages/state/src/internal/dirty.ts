// Uncheckpointed changes of one partition. Values are held as given (not
// encoded) until the next checkpoint encodes them once.

/** Marks a deleted entry. */
export const TOMBSTONE: unique symbol = Symbol("sluice.state.tombstone");
export type Tombstone = typeof TOMBSTONE;

export interface DirtyWindow {
  start: number;
  /** Window end of a put; unused for a tombstone. */
  end: number;
  value: unknown;
  /**
   * Ends whose time-index entries must be removed when this entry is written
   * (the end the window had on disk before, when it differs).
   */
  staleEnds: number[] | undefined;
  /** The end on disk is unknown: read it at checkpoint time. */
  baseUnknown: boolean;
}

export class PartitionChanges {
  readonly kv = new Map<string, unknown>();
  readonly windows = new Map<string, Map<number, DirtyWindow>>();
  windowCount = 0;
  /** Lower bound of the ends of dirty window puts. */
  minEnd = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.kv.size + this.windowCount;
  }

  getWindow(key: string, start: number): DirtyWindow | undefined {
    return this.windows.get(key)?.get(start);
  }

  setWindow(key: string, w: DirtyWindow): void {
    let byStart = this.windows.get(key);
    if (byStart === undefined) {
      byStart = new Map();
      this.windows.set(key, byStart);
    }
    if (!byStart.has(w.start)) this.windowCount++;
    byStart.set(w.start, w);
    if (w.value !== TOMBSTONE && w.end < this.minEnd) this.minEnd = w.end;
  }

  /**
   * Puts back the entries of a failed checkpoint underneath newer changes:
   * a newer change wins, but inherits what the older one still had to clean.
   */
  mergeOlder(older: PartitionChanges): void {
    for (const [key, value] of older.kv) {
      if (!this.kv.has(key)) this.kv.set(key, value);
    }
    for (const [key, byStart] of older.windows) {
      for (const [start, w] of byStart) {
        const newer = this.getWindow(key, start);
        if (newer === undefined) {
          this.setWindow(key, w);
        } else {
          if (w.staleEnds) newer.staleEnds = [...(newer.staleEnds ?? []), ...w.staleEnds];
          if (w.value !== TOMBSTONE) newer.staleEnds = [...(newer.staleEnds ?? []), w.end];
          newer.baseUnknown ||= w.baseUnknown;
        }
      }
    }
  }
}
