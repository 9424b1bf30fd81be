// runWorkers on the real broker (exactly-once): two member processes share a
// 6-partition topic and their read_committed output equals the TestDriver
// oracle exactly — once from the BUILT package (dist, as published users run
// it) and once from sources with one member SIGKILLed mid-run and restarted
// by the supervisor. stop() leaves no member process behind; SIGTERM to a
// service using runWorkers drains its members; members of a SIGKILLed
// service exit on their own.
import { type ChildProcess, spawn } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Admin, Kafka } from "kafkajs";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { WindowResult, Workers, WorkersEvent } from "../src/index.js";
import * as sources from "../src/index.js";
import type { WorkersJobArgs } from "./fixtures/workers-job.js";
import {
  brokers,
  createTopic,
  deleteTopicsWithPrefix,
  kafkaClient,
  produce,
  readAll,
  uniqueName,
} from "./kafka-helpers.js";
import { toMessages, tumblingEvents, tumblingOracle } from "./tumbling-scenario.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, "..");
const t0 = Date.now();
const log = (m: string) => {
  if (process.env.SLUICE_TEST_VERBOSE) console.log(`[workers +${Date.now() - t0} ms] ${m}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let kafka: Kafka;
let admin: Admin;
const prefixes: string[] = [];
const dirs: string[] = [];
const running: Workers[] = [];
const parents: ChildProcess[] = [];
const events: WorkersEvent[] = [];
const listener = (m: unknown) => {
  const e = m as WorkersEvent;
  events.push(e);
  log(`event ${JSON.stringify(e)}`);
};

beforeAll(async () => {
  diagnostics.subscribe("sluice:job:workers", listener);
  kafka = kafkaClient();
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  diagnostics.unsubscribe("sluice:job:workers", listener);
  for (const w of running) await w.stop();
  for (const c of parents) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await deleteTopicsWithPrefix(admin, prefixes);
  if (prefixes.length > 0) await admin.deleteGroups(prefixes).catch(() => {});
  await admin.disconnect();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const partitions = 6;

/** A topic, its events (240 users, some disorder) and the oracle's output. */
async function scenario(total: number) {
  const base = uniqueName("wworkers");
  prefixes.push(base);
  const source = `${base}-events`;
  const output = `${base}-out`;
  await createTopic(admin, source, partitions);
  const msgs = tumblingEvents(total, 240, partitions);
  const expected = tumblingOracle(msgs, partitions);
  const stateDir = mkdtempSync(path.join(tmpdir(), "wworkers-"));
  dirs.push(stateDir);
  const args: WorkersJobArgs = { brokers, app: base, source, output };
  return { base, source, output, msgs, expected, toMessages, stateDir, args };
}

async function readOutput(output: string, want: number): Promise<string[]> {
  let got: string[] = [];
  // generous: the broker and both cores are shared with other suites
  const deadline = Date.now() + 100_000;
  while (Date.now() < deadline) {
    got = (await readAll(kafka, admin, output)).map((r) => {
      const w = JSON.parse(r.value as string) as WindowResult<unknown>;
      return `${w.id}=${JSON.stringify(w.value)}`;
    });
    log(`output ${got.length}/${want}`);
    if (got.length >= want) break;
    await sleep(1000);
  }
  return got.sort();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function spawnedPids(since: number): number[] {
  return events
    .slice(since)
    .filter((e) => e.event === "spawn")
    .map((e) => e.pid as number);
}

it("2 members from the built package share a 6-partition topic; output equals the oracle; stop() leaves none running", async () => {
  const entry = path.join(pkg, "dist/internal/worker-entry.js");
  expect(existsSync(entry), `${entry} (run npm run build -w packages/windowing)`).toBe(true);
  const dist = (await import(
    pathToFileURL(path.join(pkg, "dist/index.js")).href
  )) as typeof sources;
  const s = await scenario(6000);
  const since = events.length;
  await produce(kafka, s.source, s.toMessages(s.msgs.slice(0, 3000)));
  const workers = await dist.runWorkers({
    module: pathToFileURL(path.join(here, "fixtures/workers-dist-job.mjs")),
    workers: 2,
    stateDir: s.stateDir,
    args: s.args,
    execArgv: [],
    handleSignals: false,
  });
  running.push(workers);
  expect(workers.status).toBe("open");
  expect(workers.members.map((m) => m.state)).toEqual(["ready", "ready"]);
  await produce(kafka, s.source, s.toMessages(s.msgs.slice(3000)));
  const got = await readOutput(s.output, s.expected.length);
  const pids = spawnedPids(since);
  expect(pids).toHaveLength(2);
  await workers.stop();
  await workers.stop(); // idempotent
  expect(workers.status).toBe("closed");
  await expect(workers.done).resolves.toBeUndefined();
  for (const pid of pids) expect(alive(pid)).toBe(false);
  const members = workers.members;
  log(`members ${JSON.stringify(members)}`);
  expect(members.map((m) => m.state)).toEqual(["stopped", "stopped"]);
  expect(members.map((m) => m.lastExit?.code)).toEqual([0, 0]);
  // both members did part of the work
  for (const m of members) expect(m.records).toBeGreaterThan(0);
  expect(got.length).toBe(s.expected.length);
  expect(got).toEqual(s.expected);
}, 200_000);

it("the CommonJS build finds the member entry too", async () => {
  const cjs = createRequire(import.meta.url)(path.join(pkg, "dist/index.cjs")) as typeof sources;
  const stateDir = mkdtempSync(path.join(tmpdir(), "wworkers-cjs-"));
  dirs.push(stateDir);
  // the member starts from dist and reports the missing export: the entry resolved
  await expect(
    cjs.runWorkers({
      module: path.join(here, "fixtures/workers-dist-job.mjs"),
      exportName: "missing",
      workers: 1,
      stateDir,
      execArgv: [],
      handleSignals: false,
    }),
  ).rejects.toMatchObject({
    code: "WINDOWING_WORKER_FAILED",
    message: expect.stringMatching(/no exported function "missing"/),
  });
});

it("a member SIGKILLed mid-run is restarted and the output still equals the oracle exactly", async () => {
  const s = await scenario(12_000);
  const since = events.length;
  const workers = await sources.runWorkers({
    module: path.join(here, "fixtures/workers-job.ts"),
    exportName: "build",
    workers: 2,
    stateDir: s.stateDir,
    args: s.args,
    env: { TSX_TSCONFIG_PATH: path.join(pkg, "tsconfig.json") },
    handleSignals: false,
    restart: { initialDelayMs: 200, maxRestarts: 3 },
  });
  running.push(workers);
  const chunks = 20;
  const size = Math.ceil(s.msgs.length / chunks);
  const producing = (async () => {
    for (let c = 0; c < chunks; c++) {
      await produce(kafka, s.source, s.toMessages(s.msgs.slice(c * size, (c + 1) * size)));
      await sleep(300);
    }
  })();
  // kill member 0 once it has processed some records, while events still arrive
  const deadline = Date.now() + 60_000;
  while ((workers.members[0]?.records ?? 0) < 800 && Date.now() < deadline) await sleep(50);
  const victim = workers.members[0]?.pid as number;
  expect(workers.members[0]?.records).toBeGreaterThanOrEqual(800);
  process.kill(victim, "SIGKILL");
  log(`killed member 0 (pid ${victim})`);
  const restarted = () =>
    workers.members[0]?.restarts === 1 && workers.members[0]?.state === "ready";
  while (!restarted() && Date.now() < deadline) await sleep(100);
  expect(workers.members[0]).toMatchObject({ state: "ready", restarts: 1, incarnation: 1 });
  expect(workers.members[0]?.lastExit).toMatchObject({ signal: "SIGKILL" });
  expect(workers.members[0]?.pid).not.toBe(victim);
  expect(workers.status).toBe("open");
  await producing;
  const got = await readOutput(s.output, s.expected.length);
  const pids = spawnedPids(since);
  expect(pids).toHaveLength(3);
  await workers.stop();
  for (const pid of pids) expect(alive(pid)).toBe(false);
  const restarts = events.slice(since).filter((e) => e.event === "restart");
  expect(restarts).toEqual([
    expect.objectContaining({ member: 0, delayMs: 200, reason: expect.stringMatching(/SIGKILL/) }),
  ]);
  expect(got.length).toBe(s.expected.length);
  expect(got).toEqual(s.expected);
}, 200_000);

/** Runs fixtures/workers-parent.ts (a service using runWorkers) in its own process. */
function parentProcess(config: { args: WorkersJobArgs; stateDir: string }) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(here, "fixtures/workers-parent.ts")],
    {
      cwd: path.resolve(pkg, "../.."),
      env: {
        ...process.env,
        WORKERS_PARENT_CONFIG: JSON.stringify(config),
        TSX_TSCONFIG_PATH: path.join(pkg, "tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  parents.push(child);
  const lines: Record<string, unknown>[] = [];
  let buf = "";
  child.stdout?.on("data", (d) => {
    buf += String(d);
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      log(`parent: ${text}`);
      if (text.startsWith("{")) lines.push(JSON.parse(text) as Record<string, unknown>);
    }
  });
  child.stderr?.on("data", (d) => log(`parent stderr: ${String(d).trim()}`));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const ready = (async () => {
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const l = lines.find((x) => x.ready);
      if (l) return l.pids as number[];
      await sleep(100);
    }
    throw new Error("the parent process did not report ready");
  })();
  return { child, lines, exited, ready };
}

async function gone(pids: number[], withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (pids.every((p) => !alive(p))) return true;
    await sleep(100);
  }
  return false;
}

it("SIGTERM to the service drains every member (exit 0) and the service exits", async () => {
  const s = await scenario(2000);
  await produce(kafka, s.source, s.toMessages(s.msgs));
  const parent = parentProcess({ args: s.args, stateDir: s.stateDir });
  const pids = await parent.ready;
  expect(pids).toHaveLength(2);
  const got = await readOutput(s.output, s.expected.length);
  expect(got).toEqual(s.expected);
  parent.child.kill("SIGTERM");
  expect(await parent.exited).toEqual({ code: 0, signal: null });
  const done = parent.lines.find((l) => l.done) as {
    status: string;
    members: { state: string; lastExit?: { code: number | null } }[];
  };
  expect(done.status).toBe("closed");
  expect(done.members.map((m) => [m.state, m.lastExit?.code])).toEqual([
    ["stopped", 0],
    ["stopped", 0],
  ]);
  expect(await gone(pids, 5000)).toBe(true);
}, 200_000);

it("members of a SIGKILLed service drain themselves and exit (no orphans)", async () => {
  const s = await scenario(1000);
  await produce(kafka, s.source, s.toMessages(s.msgs));
  const parent = parentProcess({ args: s.args, stateDir: s.stateDir });
  const pids = await parent.ready;
  parent.child.kill("SIGKILL");
  await parent.exited;
  expect(await gone(pids, 30_000)).toBe(true);
}, 200_000);
