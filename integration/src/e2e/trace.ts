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
}

/** A job partition whose stream time went backwards: it resumed from older state. */
export interface StreamTimeRegression {
  applicationId: string;
  partition: number;
  /** When, since the start of the run. */
  atMs: number;
  /** Stream time reached before (by any process) and the one reported now. */
  before: number;
  after: number;
  /** Process that reported the older stream time, and the one that had reached the newer. */
  pid: number;
  previousPid: number;
  /** The group's committed offsets of the partition when this process restored it, if traced. */
  committedAtRestore?: Record<string, string>;
}

/** What the aggregators' traces of one run show. */
export interface TraceSummary {
  lines: number;
  restores: number;
  rebalances: number;
  warnings: string[];
  /** Steps back larger than the threshold, largest first. */
  regressions: StreamTimeRegression[];
}

/**
 * Reads every `*.trace.jsonl` of a run's log directory and looks for job
 * partitions whose stream time went back by more than `thresholdMs` of event
 * time: a new owner (or a restarted process) that resumed from state older
 * than what had been committed. Uncommitted work lost to a SIGKILL moves it
 * back by about one commit interval's worth of events; stale state moves it
 * back by much more.
 *
 * @param dir - the run's log directory
 * @param t0 - start of the run (wall clock, for relative times)
 * @param thresholdMs - event time a step back must exceed to be listed
 * @returns the summary
 */
export async function summarizeTraces(
  dir: string,
  t0: number,
  thresholdMs = 15 * 60_000,
): Promise<TraceSummary> {
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
  const highest = new Map<string, { st: number; pid: number }>();
  const committedAt = new Map<string, Record<string, string>>();
  const regressions: StreamTimeRegression[] = [];
  for (const l of lines) {
    const k = `${l.applicationId}/${l.partition}`;
    if (l.ch === "committed-at-restore" && l.committed)
      committedAt.set(`${l.pid}/${k}`, l.committed);
    if (l.ch !== "stream-time" || l.streamTime === undefined) continue;
    const h = highest.get(k);
    if (h && h.st - l.streamTime > thresholdMs) {
      regressions.push({
        applicationId: l.applicationId ?? "",
        partition: l.partition ?? -1,
        atMs: l.t - t0,
        before: h.st,
        after: l.streamTime,
        pid: l.pid,
        previousPid: h.pid,
        ...(committedAt.has(`${l.pid}/${k}`)
          ? { committedAtRestore: committedAt.get(`${l.pid}/${k}`) }
          : {}),
      });
    }
    if (!h || l.streamTime > h.st) highest.set(k, { st: l.streamTime, pid: l.pid });
  }
  regressions.sort((a, b) => b.before - b.after - (a.before - a.after));
  return {
    lines: lines.length,
    restores: lines.filter((l) => l.ch === "restore").length,
    rebalances: lines.filter((l) => l.ch === "rebalance").length,
    warnings: [...new Set(lines.filter((l) => l.ch === "warning").map((l) => l.message ?? ""))],
    regressions,
  };
}

/**
 * A few readable lines about a run's traces for the report.
 *
 * @param s - the summary
 * @param namespace - prefix stripped from application ids
 * @returns printable text
 */
export function formatTraceSummary(s: TraceSummary, namespace: string): string {
  const app = (a: string) => (a.startsWith(namespace) ? a.slice(namespace.length + 1) : a);
  const out = [
    `trace: ${s.lines} lines, ${s.restores} partition restores, ${s.rebalances} rebalances, ` +
      `${s.regressions.length} stream-time steps back over 15 min of event time`,
  ];
  for (const r of s.regressions.slice(0, 8)) {
    out.push(
      `  ${app(r.applicationId)}/${r.partition} at ${(r.atMs / 1000).toFixed(1)}s: pid ${r.pid} ` +
        `resumed at ${new Date(r.after).toISOString()}, pid ${r.previousPid} had reached ` +
        `${new Date(r.before).toISOString()} (${((r.before - r.after) / 60_000).toFixed(0)} min back)` +
        (r.committedAtRestore
          ? `; committed offsets at its restore: ${Object.entries(r.committedAtRestore)
              .map(([t, o]) => `${app(t)} ${o}`)
              .join(", ")}`
          : ""),
    );
  }
  for (const w of s.warnings.slice(0, 8)) out.push(`  warning: ${w.slice(0, 200)}`);
  return out.join("\n");
}
