// Exactly-once under SIGKILL: the job process is killed at random moments
// (6 times by default, 100,000 events over 3 partitions) while events are
// still arriving; after the last restart the read_committed output, read
// with kafkajs like a downstream consumer would, must equal record for record
// what the TestDriver produces for the same input — no loss, no duplicate,
// same identities.
//
// Knobs: SLUICE_CRASH_EVENTS, SLUICE_CRASH_KILLS, SLUICE_CRASH_SEED;
// SLUICE_CRASH_DIAG=<dir> writes the duplicates (with partition@offset) of a
// failing run there and keeps its topics for inspection.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Message } from "kafkajs";
import { expect, it } from "vitest";
import {
  count,
  createTestDriver,
  defineJob,
  sum,
  tumbling,
  type WindowResult,
} from "../src/index.js";
import {
  brokerFixture,
  brokers,
  createTopic,
  produce,
  readAll,
  uniqueName,
} from "./kafka-helpers.js";

type Ev = { user: string; amount: number; ts: number };
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");

const { kafka, admin, prefixes, dirs, children } = brokerFixture();

interface Job {
  child: ChildProcess;
  ready: Promise<void>;
  /** Records this process has processed so far (from its `records` lines). */
  processed: () => number;
}

function startJob(envs: Record<string, string>): Job {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(here, "fixtures/crash-job.ts")],
    {
      cwd: root,
      env: {
        ...process.env,
        ...envs,
        TSX_TSCONFIG_PATH: path.join(root, "packages/windowing/tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  let err = "";
  let processed = 0;
  let pendingLine = "";
  child.stderr?.on("data", (d) => {
    err += String(d);
    log(`job stderr: ${String(d).trim()}`);
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      const lines = (pendingLine + String(d)).split("\n");
      pendingLine = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "ready") resolve();
        const m = /^records \d+ (\d+)$/.exec(line);
        if (m) processed += Number(m[1]);
      }
    });
    child.on("exit", (code, signal) =>
      reject(new Error(`job exited (${code ?? signal}) before ready: ${err.slice(-2000)}`)),
    );
  });
  ready.catch(() => {});
  return { child, ready, processed: () => processed };
}

const t0 = Date.now();
const log = (m: string) => {
  if (process.env.SLUICE_TEST_VERBOSE) console.log(`[crash +${Date.now() - t0} ms] ${m}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The kills land at random moments: some while the job is still restoring
// or has just started, most after it has processed a random share of the
// input, so that open transactions, restores from a local copy that is
// behind, and replays all happen.
it("SIGKILL at random moments, restart: read_committed output equals the oracle exactly", {
  timeout: 300_000,
}, async () => {
  const base = uniqueName("wcrash");
  prefixes.push(base);
  const source = `${base}-events`;
  const output = `${base}-out`;
  const partitions = 3;
  const total = Number(process.env.SLUICE_CRASH_EVENTS ?? 100_000);
  await createTopic(admin, source, partitions);
  const stateDir = mkdtempSync(path.join(tmpdir(), "wcrash-"));
  dirs.push(stateDir);

  // Events: 300 users, event time mostly increasing with some disorder.
  const msgs: { ev: Ev; partition: number }[] = [];
  for (let i = 0; i < total; i++) {
    const u = (i * 7919) % 300;
    const jitter = (i * 31) % 150;
    msgs.push({
      ev: { user: `u${u}`, amount: (i % 5) + 1, ts: i * 5 + jitter },
      partition: u % partitions,
    });
  }
  for (let p = 0; p < partitions; p++) {
    msgs.push({ ev: { user: `end${p}`, amount: 0, ts: total * 5 + 100_000 }, partition: p });
  }
  const driver = createTestDriver(
    defineJob<Ev>({ source: { eventTime: "ts" } })
      .window(tumbling({ size: 1000, grace: 200 }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .emit("update"),
    { partitions },
  );
  for (const { ev, partition } of msgs)
    driver.pipe(ev, { key: ev.user, partition, timestamp: ev.ts });
  const expected = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
  const env = {
    BROKERS: brokers.join(","),
    APP: base,
    SOURCE: source,
    OUTPUT: output,
    STATE_DIR: stateDir,
  };

  // Produce in chunks while the job is being killed and restarted.
  const chunks = 40;
  const size = Math.ceil(msgs.length / chunks);
  const producing = (async () => {
    for (let c = 0; c < chunks; c++) {
      const part: Message[] = msgs
        .slice(c * size, (c + 1) * size)
        .map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition }));
      await produce(kafka, source, part);
      await sleep(400);
    }
  })();

  let kills = 0;
  let seed = Number(process.env.SLUICE_CRASH_SEED ?? 12345);
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const wantKills = Number(process.env.SLUICE_CRASH_KILLS ?? 6);
  while (kills < wantKills) {
    const job = startJob(env);
    await job.ready;
    // One kill in three comes soon after start (restore, first commits);
    // the others once this process has handled a random share of the input.
    const early = rand() < 1 / 3;
    const quota = early ? 0 : Math.floor((rand() * (1.5 * total)) / wantKills);
    const delay = 100 + rand() * (early ? 1500 : 400);
    const until = Date.now() + 30_000;
    while (job.processed() < quota && Date.now() < until) await sleep(20);
    await sleep(delay);
    log(`kill ${kills + 1}: processed ${job.processed()} (quota ${quota})`);
    job.child.kill("SIGKILL");
    if (job.child.exitCode === null && job.child.signalCode === null)
      await new Promise((r) => job.child.once("exit", r));
    kills++;
  }
  await producing;
  const last = startJob(env);
  await last.ready;
  log("last job ready");
  // Done when the group's committed offsets reach the end of the source.
  const ends = await admin.fetchTopicOffsets(source);
  const deadline = Date.now() + 150_000;
  for (;;) {
    const committed = await admin.fetchOffsets({ groupId: base, topics: [source] });
    const behind = ends.filter((e) => {
      const c = committed[0]?.partitions.find((x) => x.partition === e.partition)?.offset;
      return c === undefined || BigInt(c) < BigInt(e.high);
    }).length;
    log(`partitions behind: ${behind}`);
    if (behind === 0 || Date.now() > deadline) break;
    await sleep(1000);
  }
  const rows = await readAll(kafka, admin, output, 120_000);
  const got = rows.map((r) => {
    const w = JSON.parse(r.value as string) as WindowResult<unknown>;
    return `${w.id}=${JSON.stringify(w.value)}`;
  });
  const where = rows.map((r) => `${r.partition}@${r.offset}`);
  log(`output ${got.length}/${expected.length}`);
  last.child.kill("SIGTERM");
  const forced = setTimeout(() => last.child.kill("SIGKILL"), 15_000);
  if (last.child.exitCode === null && last.child.signalCode === null) {
    await new Promise((r) => last.child.once("exit", r));
  }
  clearTimeout(forced);
  if (got.length !== expected.length && process.env.SLUICE_CRASH_DIAG) {
    const seen = new Map<string, string>();
    const dups: string[] = [];
    got.forEach((g, i) => {
      const prev = seen.get(g);
      if (prev) dups.push(`${g} ${prev} ${where[i]}`);
      else seen.set(g, where[i] as string);
    });
    const { writeFileSync } = await import("node:fs");
    writeFileSync(
      `${process.env.SLUICE_CRASH_DIAG}/${output}.txt`,
      `${output} got ${got.length} expected ${expected.length}\n${dups.join("\n")}\n`,
    );
    prefixes.splice(prefixes.indexOf(base), 1);
  }
  expect(kills).toBeGreaterThanOrEqual(Math.min(5, wantKills));
  expect(got.length).toBe(expected.length);
  expect(got.sort()).toEqual(expected);
});
