// An independent brute-force model of the windowing semantics, used by the
// property tests. It recomputes everything from the record list each time.
import type { WindowSpec } from "../src/windows.js";

export interface Rec {
  key: string;
  ts: number;
  v: number;
}

export interface OracleWindow {
  key: string;
  start: number;
  end: number;
  values: number[];
}

/** For each record in arrival order: was it late (for all / some windows), and stream time after it. */
export function classify(
  spec: WindowSpec,
  recs: readonly Rec[],
): { accepted: boolean[]; late: boolean[] } {
  let st = Number.NEGATIVE_INFINITY;
  const accepted: boolean[] = [];
  const late: boolean[] = [];
  for (const r of recs) {
    st = Math.max(st, r.ts);
    if (spec.type === "tumbling" || spec.type === "hopping") {
      const ws = fixedWindows(spec, r.ts);
      const open = ws.filter((s) => s + spec.sizeMs + spec.graceMs > st);
      accepted.push(open.length > 0);
      late.push(open.length < ws.length);
    } else {
      const isLate = st > r.ts + spec.graceMs;
      accepted.push(!isLate);
      late.push(isLate);
    }
  }
  return { accepted, late };
}

/** Window starts containing t, by enumeration from 0. */
export function fixedWindows(
  spec: WindowSpec & { type: "tumbling" | "hopping" },
  t: number,
): number[] {
  const adv = spec.type === "tumbling" ? spec.sizeMs : spec.advanceMs;
  const out: number[] = [];
  for (let s = 0; s <= t; s += adv) if (t < s + spec.sizeMs) out.push(s);
  return out;
}

/** The windows and their member values that a complete run must finalize. */
export function finalWindows(spec: WindowSpec, recs: readonly Rec[]): OracleWindow[] {
  const { accepted } = classify(spec, recs);
  // For fixed windows, a record only joins the windows open when it arrived.
  let st = Number.NEGATIVE_INFINITY;
  const map = new Map<string, OracleWindow>();
  const add = (key: string, start: number, end: number, v: number) => {
    const id = `${key}|${start}|${end}`;
    let w = map.get(id);
    if (!w) {
      w = { key, start, end, values: [] };
      map.set(id, w);
    }
    w.values.push(v);
  };
  const acc: Rec[] = [];
  recs.forEach((r, i) => {
    st = Math.max(st, r.ts);
    if (!accepted[i]) return;
    acc.push(r);
    if (spec.type === "tumbling" || spec.type === "hopping") {
      for (const s of fixedWindows(spec, r.ts)) {
        if (s + spec.sizeMs + spec.graceMs > st) add(r.key, s, s + spec.sizeMs, r.v);
      }
    }
  });
  if (spec.type === "sliding") {
    const seen = new Set<string>();
    for (const r of acc) {
      const id = `${r.key}|${r.ts}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const start = r.ts + 1 - spec.sizeMs;
      const members = acc.filter((x) => x.key === r.key && x.ts >= start && x.ts <= r.ts);
      for (const m of members) add(r.key, start, r.ts + 1, m.v);
    }
  }
  if (spec.type === "session") {
    const keys = [...new Set(acc.map((r) => r.key))];
    for (const key of keys) {
      const rs = acc.filter((r) => r.key === key).sort((a, b) => a.ts - b.ts);
      let group: Rec[] = [];
      const flush = () => {
        if (group.length === 0) return;
        const start = (group[0] as Rec).ts;
        const end = (group[group.length - 1] as Rec).ts + 1;
        for (const g of group) add(key, start, end, g.v);
        group = [];
      };
      for (const r of rs) {
        if (group.length > 0 && r.ts - (group[group.length - 1] as Rec).ts > spec.gapMs) flush();
        group.push(r);
      }
      flush();
    }
  }
  return [...map.values()];
}

/** Values of accepted records among the first `n` with `key` and start <= ts < end. */
export function prefixValues(
  spec: WindowSpec,
  recs: readonly Rec[],
  n: number,
  key: string,
  start: number,
  end: number,
): number[] {
  const { accepted } = classify(spec, recs);
  let st = Number.NEGATIVE_INFINITY;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = recs[i] as Rec;
    st = Math.max(st, r.ts);
    if (!accepted[i] || r.key !== key || r.ts < start || r.ts >= end) continue;
    if (spec.type === "tumbling" || spec.type === "hopping") {
      // joined this window only if it was open on arrival
      if (start + spec.sizeMs + spec.graceMs <= st) continue;
    }
    out.push(r.v);
  }
  return out;
}

/** When the oracle window closes (stream time at which it is final). */
export function closeTime(spec: WindowSpec, w: OracleWindow): number {
  if (spec.type === "session") return w.end - 1 + spec.gapMs + spec.graceMs + 1;
  return w.end + spec.graceMs;
}
