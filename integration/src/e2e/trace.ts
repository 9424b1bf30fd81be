import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

/** One line of an aggregator's trace file (see trace-hook.ts). */
export interface TraceLine {
  t: number;
  pid: number;
  ch: string;
  applicationId?: string;
  partition?: number;
  streamTime?: number;
  records?: number;
  durationMs?: number;
  assigned?: number[];
  revoked?: number[];
  message?: string;
  committed?: Record<string, string>;
  total?: Record<string, number>;
}

/** A restore that came back with a stream time older than one already committed: stale state. */
export interface StaleRestore {
  applicationId: string;
  partition: number;
  /** When the restored partition first committed, since the start of the run. */
  atMs: number;
  /** Stream time committed before (by `previousPid`) and the one the restored partition resumed at. */
  before: number;
  after: number;
  pid: number;
  previousPid: number;
  /** The group's committed offsets of the partition when `pid` restored it, if traced. */
  committedAtRestore?: Record<string, string>;
}

/** A job whose commit count stopped moving in a process that kept running. */
export interface StalledJob {
  applicationId: string;
  pid: number;
  /** Last time its count moved, and the last trace line of the process, since the start of the run. */
  lastCommitMs: number;
  lastSeenMs: number;
}

/** What the aggregators' traces of one run show. */
export interface TraceSummary {
  lines: number;
  restores: number;
  rebalances: number;
  warnings: string[];
  sinkFailures: number;
  staleRestores: StaleRestore[];
  stalls: StalledJob[];
}

/** An empty summary (no trace files). */
export const NO_TRACE: TraceSummary = {
  lines: 0,
  restores: 0,
  rebalances: 0,
  warnings: [],
  sinkFailures: 0,
  staleRestores: [],
  stalls: [],
};

/**
 * Reads every `*.trace.jsonl` of a run's log directory and looks for
 *
 * - stale restores: the first stream time a process commits for a partition
 *   after restoring it, lower by more than `thresholdMs` of event time than a
 *   stream time some process had committed before. A stream time counts as
 *   committed once the same process commits the partition again without
 *   restoring it in between (stream times are published just before each
 *   partition's transaction commits; a fenced or failed commit drops the
 *   partition, so the next one follows a restore);
 * - stalls: a job whose commit count did not move for `stallMs` while its
 *   process kept running.
 *
 * @param dir - the run's log directory
 * @param t0 - start of the run (wall clock, for relative times)
 * @param opts - thresholds
 * @returns the summary
 */
export async function summarizeTraces(
  dir: string,
  t0: number,
  opts: { thresholdMs?: number; stallMs?: number } = {},
): Promise<TraceSummary> {
  const thresholdMs = opts.thresholdMs ?? 60_000;
  const stallMs = opts.stallMs ?? 120_000;
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) =>
    f.endsWith(".trace.jsonl"),
  );
  const lines: TraceLine[] = [];
  for (const f of files) {
    const text = await readFile(path.join(dir, f), "utf8");
    for (const l of text.split("\n")) {
      if (!l) continue;
      try {
        lines.push(JSON.parse(l) as TraceLine);
      } catch {
        // a line cut by a SIGKILL
      }
    }
  }
  lines.sort((a, b) => a.t - b.t);

  // Per job partition: the highest committed stream time, and per process its
  // last published (not yet confirmed) one and whether it restored since.
  const committed = new Map<string, { st: number; pid: number }>();
  const pending = new Map<string, { st: number; fresh: boolean }>();
  const committedAt = new Map<string, Record<string, string>>();
  const staleRestores: StaleRestore[] = [];
  for (const l of lines) {
    const k = `${l.applicationId}/${l.partition}`;
    const mine = `${l.pid}/${k}`;
    if (l.ch === "restore") {
      pending.set(mine, { st: Number.NEGATIVE_INFINITY, fresh: true });
      continue;
    }
    if (l.ch === "committed-at-restore" && l.committed) committedAt.set(mine, l.committed);
    if (l.ch !== "stream-time" || l.streamTime === undefined) continue;
    const p = pending.get(mine);
    if (p && !p.fresh && Number.isFinite(p.st)) {
      // Committed again without a restore: the previous one committed.
      const c = committed.get(k);
      if (!c || p.st > c.st) committed.set(k, { st: p.st, pid: l.pid });
    }
    if (p?.fresh) {
      const c = committed.get(k);
      if (c && c.st - l.streamTime > thresholdMs) {
        staleRestores.push({
          applicationId: l.applicationId ?? "",
          partition: l.partition ?? -1,
          atMs: l.t - t0,
          before: c.st,
          after: l.streamTime,
          pid: l.pid,
          previousPid: c.pid,
          ...(committedAt.has(mine) ? { committedAtRestore: committedAt.get(mine) } : {}),
        });
      }
    }
    pending.set(mine, { st: l.streamTime, fresh: false });
  }

  // Stalls: per process and job, when the commit count last moved.
  const moved = new Map<string, { count: number; at: number; app: string; pid: number }>();
  const lastSeen = new Map<number, number>();
  for (const l of lines) {
    lastSeen.set(l.pid, l.t);
    if (l.ch !== "commits" || !l.total) continue;
    for (const [app, count] of Object.entries(l.total)) {
      const key = `${l.pid}/${app}`;
      const m = moved.get(key);
      if (!m || count !== m.count) moved.set(key, { count, at: l.t, app, pid: l.pid });
    }
  }
  const stalls: StalledJob[] = [];
  for (const m of moved.values()) {
    const seen = lastSeen.get(m.pid) ?? m.at;
    if (seen - m.at >= stallMs) {
      stalls.push({
        applicationId: m.app,
        pid: m.pid,
        lastCommitMs: m.at - t0,
        lastSeenMs: seen - t0,
      });
    }
  }
  return {
    lines: lines.length,
    restores: lines.filter((l) => l.ch === "restore").length,
    rebalances: lines.filter((l) => l.ch === "rebalance").length,
    warnings: [...new Set(lines.filter((l) => l.ch === "warning").map((l) => l.message ?? ""))],
    sinkFailures: lines.filter((l) => l.ch === "sink-batch-failed").length,
    staleRestores,
    stalls,
  };
}

/**
 * A few readable lines about a run's traces for the report.
 *
 * @param s - the summary
 * @param namespace - prefix stripped from application ids and topics
 * @returns printable text
 */
export function formatTraceSummary(s: TraceSummary, namespace: string): string {
  const short = (a: string) => (a.startsWith(namespace) ? a.slice(namespace.length + 1) : a);
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  const out = [
    `trace: ${s.lines} lines, ${s.restores} partition restores, ${s.rebalances} rebalances, ` +
      `${s.sinkFailures} failed sink batches, ${s.staleRestores.length} stale restores, ` +
      `${s.stalls.length} stalled jobs`,
  ];
  for (const r of s.staleRestores.slice(0, 8)) {
    out.push(
      `  stale restore ${short(r.applicationId)}/${r.partition} at ${secs(r.atMs)}: pid ${r.pid} ` +
        `resumed at ${new Date(r.after).toISOString()}, pid ${r.previousPid} had committed ` +
        `${new Date(r.before).toISOString()}` +
        (r.committedAtRestore
          ? `; committed offsets at the restore: ${Object.entries(r.committedAtRestore)
              .map(([t, o]) => `${short(t)} ${o}`)
              .join(", ")}`
          : ""),
    );
  }
  for (const j of s.stalls.slice(0, 8)) {
    out.push(
      `  stalled ${short(j.applicationId)} in pid ${j.pid}: no commit from ${secs(j.lastCommitMs)} ` +
        `to ${secs(j.lastSeenMs)}`,
    );
  }
  for (const w of s.warnings.slice(0, 8)) out.push(`  warning: ${w.slice(0, 200)}`);
  return out.join("\n");
}
