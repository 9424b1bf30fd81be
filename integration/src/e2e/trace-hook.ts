// Loaded into every aggregator process of the end-to-end suite
// (`node --import tsx --import <this file>`) when SLUICE_E2E_TRACE_FILE is
// set: appends the windowing jobs' rebalances, restores, readiness, stream
// times and process warnings to that file, one JSON line each, written
// synchronously so that a SIGKILL loses nothing already traced. The suite
// reads the files back after the run (see trace.ts): a partition whose
// stream time goes backwards across owners resumed from stale state.

import { subscribe } from "node:diagnostics_channel";
import { appendFileSync } from "node:fs";
import { type Admin, Kafka, logLevel } from "kafkajs";

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
  // With each restore, the group's committed offsets of that partition (the
  // source offset the restored state should resume from): a restore that
  // comes back with old state (stream time far back) while these are current
  // is the stale-restore failure.
  const brokers = process.env.SLUICE_KAFKA_BROKERS?.split(",").filter(Boolean) ?? [];
  let admin: Promise<Admin | undefined> | undefined;
  const connect = () => {
    admin ??= (async () => {
      const a = new Kafka({
        clientId: "sluice-e2e-trace",
        brokers,
        logLevel: logLevel.NOTHING,
      }).admin();
      await a.connect();
      return a;
    })().catch(() => undefined);
    return admin;
  };
  subscribe("sluice:job:restore", (raw) => {
    const m = raw as { applicationId: string; partition: number };
    last.delete(`${m.applicationId}/${m.partition}`);
    if (brokers.length === 0) return;
    void connect()
      .then((a) => a?.fetchOffsets({ groupId: m.applicationId }))
      .then((topics) => {
        if (!topics) return;
        const committed: Record<string, string> = {};
        for (const t of topics) {
          const o = t.partitions.find((p) => p.partition === m.partition)?.offset;
          if (o !== undefined) committed[t.topic] = o;
        }
        write("committed-at-restore", {
          applicationId: m.applicationId,
          partition: m.partition,
          committed,
        });
      })
      .catch(() => undefined);
  });
  process.on("warning", (w) => write("warning", { message: w.message }));
}
