// Loaded into every aggregator process of the end-to-end suite
// (`node --import tsx --import <this file>`) when SLUICE_E2E_TRACE_FILE is
// set: appends the windowing jobs' rebalances, restores (with the group's
// committed offsets at that moment), readiness, stream time per partition at
// each commit, commit counts every 10 s, sink failures and retries, and
// process warnings to that file, one JSON line each, written synchronously so
// that a SIGKILL loses nothing already traced. The suite reads the files back
// after the run (trace.ts): a restore that comes back with a stream time older
// than one already committed resumed from stale state; a commit count that
// stops moving is a stalled job.

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
  // Stream time per job partition at each commit (published just before the
  // partition's transaction commits; trace.ts tells committed ones apart).
  subscribe("sluice:job:stream-time", (m) => write("stream-time", m as object));
  // Sink batches that failed and retries: a sink that stops acknowledging
  // holds every commit of its job.
  subscribe("sluice:sink:batch", (raw) => {
    const m = raw as { error?: string };
    if (m.error !== undefined) write("sink-batch-failed", m);
  });
  subscribe("sluice:sink:retry", (m) => write("sink-retry", m as object));
  // Commits per job every 10 s: a job whose count stops moving is stalled.
  const commits = new Map<string, number>();
  subscribe("sluice:job:commit", (raw) => {
    const app = (raw as { applicationId: string }).applicationId;
    commits.set(app, (commits.get(app) ?? 0) + 1);
  });
  setInterval(() => write("commits", { total: Object.fromEntries(commits) }), 10_000).unref();
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
