// Brute-force oracles for joins and patterns, written from the documented
// semantics only (no shared code with the operators).

export type SideRec = { side: 0 | 1; key: string; t: number; v: number };

/** Stream time per arrival; a record is late when stream time (after it) > t + grace. */
function nonLate<R extends { t: number }>(recs: R[], grace: number) {
  let st = Number.NEGATIVE_INFINITY;
  const ok: (R & { i: number })[] = [];
  let late = 0;
  recs.forEach((r, i) => {
    st = Math.max(st, r.t);
    if (st > r.t + grace) late++;
    else ok.push({ ...r, i });
  });
  return { ok, late, st };
}

export function streamJoinOracle(
  recs: SideRec[],
  cfg: { type: "inner" | "left" | "outer"; within: number; grace: number },
): { results: string[]; late: number } {
  // stream time = the lower of the two sides' highest event times
  const max = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  let st = Number.NEGATIVE_INFINITY;
  const ok: (SideRec & { i: number })[] = [];
  let late = 0;
  recs.forEach((r, i) => {
    max[r.side] = Math.max(max[r.side] as number, r.t);
    st = Math.max(st, Math.min(max[0] as number, max[1] as number));
    if (st > r.t + cfg.grace) late++;
    else ok.push({ ...r, i });
  });
  const occ = new Map<number, number>();
  for (const r of ok) {
    occ.set(
      r.i,
      ok.filter((x) => x.i < r.i && x.key === r.key && x.side === r.side && x.t === r.t).length,
    );
  }
  const results: string[] = [];
  const matched = new Set<number>();
  for (const l of ok) {
    if (l.side !== 0) continue;
    for (const r of ok) {
      if (r.side !== 1 || r.key !== l.key || Math.abs(l.t - r.t) > cfg.within) continue;
      matched.add(l.i);
      matched.add(r.i);
      results.push(
        `${l.t}:${occ.get(l.i)}:${r.t}:${occ.get(r.i)}:${l.key}=${JSON.stringify({ left: l.v, right: r.v })}`,
      );
    }
  }
  for (const x of ok) {
    if (matched.has(x.i) || st <= x.t + cfg.within + cfg.grace) continue;
    if (x.side === 0 && cfg.type !== "inner")
      results.push(
        `${x.t}:${occ.get(x.i)}:-:-:${x.key}=${JSON.stringify({ left: x.v, right: null })}`,
      );
    if (x.side === 1 && cfg.type === "outer")
      results.push(
        `-:-:${x.t}:${occ.get(x.i)}:${x.key}=${JSON.stringify({ left: null, right: x.v })}`,
      );
  }
  return { results: results.sort(), late };
}

export type Ev = { key: string; t: number; type: string };

export interface OracleStep {
  name: string;
  where: (e: Ev) => boolean;
  optional?: boolean;
}

export function patternOracle(
  recs: Ev[],
  cfg: {
    steps: OracleStep[];
    absent?: { name: string; where: (e: Ev) => boolean };
    within: number;
    grace: number;
  },
): { results: string[]; late: number } {
  const { ok, late, st } = nonLate(recs, cfg.grace);
  const watermark = st - cfg.grace;
  const results: string[] = [];
  const keys = [...new Set(ok.map((r) => r.key))];
  for (const key of keys) {
    const ev = ok
      .filter((r) => r.key === key && r.t < watermark)
      .sort((a, b) => a.t - b.t || a.i - b.i);
    const occ = ev.map((e, i) => ev.slice(0, i).filter((x) => x.t === e.t).length);
    let i = 0;
    while (i < ev.length) {
      const s = i;
      const start = ev[s] as (typeof ev)[number];
      if (!(cfg.steps[0] as OracleStep).where(start)) {
        i++;
        continue;
      }
      const idx = [s];
      const names = [(cfg.steps[0] as OracleStep).name];
      let step = 1;
      if (cfg.steps.length === 1 && !cfg.absent) {
        emitNamed(idx, names, start.t + 1);
        i = s + 1;
        continue;
      }
      let k = s + 1;
      let outcome: "complete" | "killed" | "expired" | "open" = "open";
      for (; k < ev.length; k++) {
        const e = ev[k] as (typeof ev)[number];
        if (e.t - start.t > cfg.within) {
          outcome = "expired";
          break;
        }
        if (step === cfg.steps.length) {
          if (cfg.absent?.where(e)) {
            outcome = "killed";
            break;
          }
          continue;
        }
        for (let j = step; j < cfg.steps.length; j++) {
          const st2 = cfg.steps[j] as OracleStep;
          if (st2.where(e)) {
            idx.push(k);
            names.push(st2.name);
            step = j + 1;
            break;
          }
          if (!st2.optional) break;
        }
        if (step === cfg.steps.length && !cfg.absent) {
          outcome = "complete";
          break;
        }
      }
      const last = ev[idx[idx.length - 1] as number] as (typeof ev)[number];
      if (outcome === "complete") {
        emitNamed(idx, names, last.t + 1);
        i = k + 1;
      } else if (outcome === "killed") {
        i = k;
      } else if (outcome === "expired") {
        if (step === cfg.steps.length && cfg.absent)
          emitNamed(idx, names, start.t + cfg.within + 1);
        i = k;
      } else {
        if (watermark > start.t + cfg.within && step === cfg.steps.length && cfg.absent)
          emitNamed(idx, names, start.t + cfg.within + 1);
        break;
      }
    }
    function emitNamed(idx: number[], names: string[], end: number) {
      const first = ev[idx[0] as number] as (typeof ev)[number];
      const events = idx.map((k, n) => {
        const e = ev[k] as (typeof ev)[number];
        return { step: names[n], timestamp: e.t, value: { key: e.key, t: e.t, type: e.type } };
      });
      results.push(
        `${first.t}:${occ[idx[0] as number]}:${key}@${first.t}-${end}=${JSON.stringify({ events })}`,
      );
    }
  }
  return { results: results.sort(), late };
}
