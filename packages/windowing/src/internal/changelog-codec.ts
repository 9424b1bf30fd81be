// Encoding of processor state in the changelog topic: window state as an
// append-only log (`["l", seq]`, see window-log.ts), one compacted entry per
// sliding-window buffer or operator state entry, plus the partition's
// metadata (stream time, emit tick and the next source offset). Keys are JSON
// arrays so a compacted topic keeps exactly the latest value of each entry.
// Restore still reads the earlier per-window entries (`["w", key, start]`).
import type { StateMutation, StoredMeta, StoredWindow } from "./processor.js";
import type { WindowLogEntry } from "./window-log.js";

export interface RestoredPartition {
  /** Windows in the earlier per-window format. */
  windows: StoredWindow[];
  /** Live entries of the window log, in sequence order. */
  log: WindowLogEntry[];
  buffers: [string, { t: number; v: unknown }[]][];
  meta: StoredMeta | undefined;
  sourceOffset: string | undefined;
}

/**
 * Changelog records of one drain. Deletions of log entries and of per-window
 * entries come after the metadata and the source offset: an at-least-once
 * commit writes them in this order, and a crash part-way must not delete
 * state that the stored stream time and offset still need (an entry left
 * behind is deleted again after the restore).
 */
export function encodeMutations(
  mutations: readonly StateMutation[],
  sourceOffset: string | undefined,
): { key: Buffer; value: Buffer | null }[] {
  const out: { key: Buffer; value: Buffer | null }[] = [];
  const deletions: { key: Buffer; value: Buffer | null }[] = [];
  for (const m of mutations) {
    if (m.kind === "log") {
      const key = Buffer.from(`["l",${m.seq}]`);
      if (m.value === null) deletions.push({ key, value: null });
      else out.push({ key, value: Buffer.from(m.value) });
    } else if (m.kind === "window") {
      if (m.value === null) {
        deletions.push({ key: Buffer.from(JSON.stringify(["w", m.key, m.start])), value: null });
        continue;
      }
      out.push({
        key: Buffer.from(JSON.stringify(["w", m.key, m.start])),
        value: m.value ? Buffer.from(JSON.stringify(m.value)) : null,
      });
    } else if (m.kind === "buffer") {
      out.push({
        key: Buffer.from(JSON.stringify(["b", m.key])),
        value: m.value ? Buffer.from(JSON.stringify(m.value)) : null,
      });
    } else {
      out.push({ key: Buffer.from('["m"]'), value: Buffer.from(JSON.stringify(m.value)) });
    }
  }
  if (sourceOffset !== undefined) {
    out.push({ key: Buffer.from('["o"]'), value: Buffer.from(JSON.stringify(sourceOffset)) });
  }
  for (const d of deletions) out.push(d);
  return out;
}

/** Folds changelog records (in offset order) into the latest state. */
export class ChangelogFold {
  private readonly latest = new Map<string, Buffer | null>();

  apply(key: Buffer, value: Buffer | null): void {
    this.latest.set(key.toString("utf8"), value);
  }

  /** The latest value of every key (null = deleted). */
  entries(): IterableIterator<[string, Buffer | null]> {
    return this.latest.entries();
  }

  result(): RestoredPartition {
    const r: RestoredPartition = {
      windows: [],
      log: [],
      buffers: [],
      meta: undefined,
      sourceOffset: undefined,
    };
    for (const [k, v] of this.latest) {
      if (v === null) continue;
      const key = JSON.parse(k) as [string, (string | number)?, number?];
      const value = JSON.parse(v.toString("utf8"));
      if (key[0] === "l") r.log.push({ seq: key[1] as number, ...value } as WindowLogEntry);
      else if (key[0] === "w") r.windows.push(value as StoredWindow);
      else if (key[0] === "b") r.buffers.push([key[1] as string, value]);
      else if (key[0] === "m") r.meta = value as StoredMeta;
      else if (key[0] === "o") r.sourceOffset = value as string;
    }
    r.log.sort((a, b) => a.seq - b.seq);
    return r;
  }
}
