// Loaded into every aggregator process of the end-to-end suite
// (`node --import tsx --import <this file>`) when SLUICE_E2E_TRACE_FILE is
// set: appends the windowing jobs' rebalances, restores, readiness, stream
// times and process warnings to that file, one JSON line each, written
// synchronously so that a SIGKILL loses nothing already traced. The suite
// reads the files back after the run (see trace.ts): a partition whose
// stream time goes backwards across owners resumed from stale state.

import { subscribe } from "node:diagnostics_channel";
import { appendFileSync } from "node:fs";

const file = process.env.SLUICE_E2E_TRACE_FILE;

if (file) {
  const write = (ch: string, m: object) => {
    try {
      appendFileSync(file, `${JSON.stringify({ t: Date.now(), pid: process.pid, ch, ...m })}\n`);
    } catch {
      // tracing never breaks the service
    }
  };
  for (const ch of ["rebalance", "restore", "ready"]) {
    subscribe(`sluice:job:${ch}`, (m) => write(ch, m as object));
  }
  // Stream time per job partition at each commit: the first one after a
  // restore, any step back, and otherwise at most one line every 2 s.
  const last = new Map<string, { st: number; at: number }>();
  subscribe("sluice:job:stream-time", (raw) => {
    const m = raw as { applicationId: string; partition: number; streamTime: number };
    const k = `${m.applicationId}/${m.partition}`;
    const prev = last.get(k);
    const now = Date.now();
    if (!prev || m.streamTime < prev.st || now - prev.at >= 2000) {
      write("stream-time", m);
      last.set(k, { st: m.streamTime, at: now });
    } else if (m.streamTime > prev.st) {
      prev.st = m.streamTime;
    }
  });
  subscribe("sluice:job:restore", (raw) => {
    const m = raw as { applicationId: string; partition: number };
    last.delete(`${m.applicationId}/${m.partition}`);
  });
  process.on("warning", (w) => write("warning", { message: w.message }));
}
