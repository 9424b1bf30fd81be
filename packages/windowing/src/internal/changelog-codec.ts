// Encoding of processor state in the changelog topic: one compacted entry per
// window, per sliding-window buffer, plus the partition's metadata (stream
// time, emit tick and the next source offset). Keys are JSON arrays so a
// compacted topic keeps exactly the latest value of each entry.
import type { StateMutation, StoredMeta, StoredWindow } from "./processor.js";

export interface RestoredPartition {
  windows: StoredWindow[];
  buffers: [string, { t: number; v: unknown }[]][];
  meta: StoredMeta | undefined;
  sourceOffset: string | undefined;
}

export function encodeMutations(
  mutations: readonly StateMutation[],
  sourceOffset: string | undefined,
): { key: Buffer; value: Buffer | null }[] {
  const out: { key: Buffer; value: Buffer | null }[] = [];
  for (const m of mutations) {
    if (m.kind === "window") {
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
      buffers: [],
      meta: undefined,
      sourceOffset: undefined,
    };
    for (const [k, v] of this.latest) {
      if (v === null) continue;
      const key = JSON.parse(k) as [string, string?, number?];
      const value = JSON.parse(v.toString("utf8"));
      if (key[0] === "w") r.windows.push(value as StoredWindow);
      else if (key[0] === "b") r.buffers.push([key[1] as string, value]);
      else if (key[0] === "m") r.meta = value as StoredMeta;
      else if (key[0] === "o") r.sourceOffset = value as string;
    }
    return r;
  }
}
