// Scaling 1 → 3 → 1 processes mid-stream (exactly-once): members join while
// events arrive, then two leave (SIGTERM, graceful); the read_committed
// output must equal the TestDriver's output for the same input exactly.
// A zombie: a member frozen (SIGSTOP) past its session timeout loses its
// partitions, then wakes (SIGCONT) and commits work of a generation that is
// over; the broker must refuse it, and the output stays exact.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import type { WindowResult } from "../src/index.js";
import { brokerFixture, brokers, createTopic, readAll, uniqueName } from "./kafka-helpers.js";
import { produceInChunks, tumblingEvents, tumblingOracle } from "./tumbling-scenario.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const t0 = Date.now();
const log = (m: string) => {
  if (process.env.SLUICE_TEST_VERBOSE) console.log(`[rebalance +${Date.now() - t0} ms] ${m}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { kafka, admin, prefixes, dirs, children } = brokerFixture();

function member(envs: Record<string, string>): {
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<void>;
  processed: () => number;
  refused: () => string[];
} {
  let processed = 0;
  const refused: string[] = [];
  const stateDir = mkdtempSync(path.join(tmpdir(), "wrebalance-"));
  dirs.push(stateDir);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(here, "fixtures/crash-job.ts")],
    {
      cwd: root,
      env: {
        ...process.env,
        ...envs,
        STATE_DIR: stateDir,
        TSX_TSCONFIG_PATH: path.join(root, "packages/windowing/tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  child.stderr?.on("data", (d) => log(`member stderr: ${String(d).trim()}`));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      const text = String(d);
      for (const m of text.matchAll(/records \d+ (\d+)/g)) processed += Number(m[1]);
      for (const m of text.matchAll(/refused (\S+)/g)) refused.push(m[1] as string);
      if (text.includes("ready")) resolve();
    });
    child.once("exit", (code, signal) =>
      reject(new Error(`member exited (${code ?? signal}) before ready`)),
    );
  });
  ready.catch(() => {});
  return { child, ready, exited, processed: () => processed, refused: () => [...refused] };
}

/** The output's results as `id=value`, once it holds `expected` of them (60 s at most). */
async function outputOf(output: string, expected: number): Promise<string[]> {
  let got: string[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    got = (await readAll(kafka, admin, output)).map((r) => {
      const w = JSON.parse(r.value as string) as WindowResult<unknown>;
      return `${w.id}=${JSON.stringify(w.value)}`;
    });
    log(`output ${got.length}/${expected}`);
    if (got.length >= expected) break;
    await sleep(1000);
  }
  return got;
}

it("scales 1 → 3 → 1 members mid-stream with exact read_committed output", async () => {
  const base = uniqueName("wrebal");
  prefixes.push(base);
  const source = `${base}-events`;
  const output = `${base}-out`;
  const partitions = 6;
  const total = 18_000;
  await createTopic(admin, source, partitions);
  const msgs = tumblingEvents(total, 240, partitions);
  const expected = tumblingOracle(msgs, partitions);
  const env = { BROKERS: brokers.join(","), APP: base, SOURCE: source, OUTPUT: output };

  const producing = produceInChunks(kafka, source, msgs, 30, 500);

  const first = member(env);
  await first.ready;
  log("member 1 ready");
  await sleep(3000);
  const second = member(env);
  const third = member(env);
  await Promise.all([second.ready, third.ready]);
  log("members 2 and 3 ready");
  // They stay at least 5 s, and until they have processed records (their
  // assignment can wait for member 1's batch and a second rebalance).
  const joinedAt = Date.now();
  while (
    Date.now() - joinedAt < 5000 ||
    (second.processed() + third.processed() === 0 && Date.now() - joinedAt < 30_000)
  )
    await sleep(250);
  log(`members 2 and 3 processed ${second.processed() + third.processed()}`);
  second.child.kill("SIGTERM");
  third.child.kill("SIGTERM");
  await Promise.all([second.exited, third.exited]);
  log("members 2 and 3 left");
  await producing;
  const got = await outputOf(output, expected.length);
  first.child.kill("SIGTERM");
  await first.exited;
  // the scale-out really shared the work
  expect(second.processed() + third.processed()).toBeGreaterThan(0);
  expect(first.processed()).toBeGreaterThan(0);
  expect(got.length).toBe(expected.length);
  expect(got.sort()).toEqual(expected);
}, 180_000);

it("a member frozen past its session timeout is fenced: its late commits are refused, output exact", async () => {
  const base = uniqueName("wzombie");
  prefixes.push(base);
  const source = `${base}-events`;
  const output = `${base}-out`;
  const partitions = 4;
  const total = 16_000;
  await createTopic(admin, source, partitions);
  const msgs = tumblingEvents(total, 240, partitions);
  const expected = tumblingOracle(msgs, partitions);
  // A short transaction timeout: the frozen member's open transaction is
  // aborted by the coordinator within seconds, not a minute.
  const env = {
    BROKERS: brokers.join(","),
    APP: base,
    SOURCE: source,
    OUTPUT: output,
    TXN_TIMEOUT_MS: "8000",
  };
  const producing = produceInChunks(kafka, source, msgs, 40, 500);
  const first = member(env);
  const second = member(env);
  await Promise.all([first.ready, second.ready]);
  const joinedAt = Date.now();
  while ((first.processed() === 0 || second.processed() === 0) && Date.now() - joinedAt < 30_000)
    await sleep(100);
  // Frozen right after it reports a batch: it then holds work of that batch
  // not yet committed, or a transaction open for it.
  const seen = second.processed();
  while (second.processed() === seen && Date.now() - joinedAt < 40_000) await sleep(1);
  second.child.kill("SIGSTOP");
  log(`both processing (${first.processed()} / ${second.processed()}); member 2 frozen`);
  const before = first.processed();
  // Past the session timeout (6 s) the group gives member 2's partitions to
  // member 1, which restores them once member 2's open transaction is over.
  await sleep(20_000);
  log(`member 1 processed ${first.processed() - before} while member 2 was frozen`);
  second.child.kill("SIGCONT");
  await producing;
  // Member 2 rejoins; give it time to commit anything it still holds.
  await sleep(8_000);
  const got = await outputOf(output, expected.length);
  second.child.kill("SIGTERM");
  first.child.kill("SIGTERM");
  await Promise.all([first.exited, second.exited]);
  log(`member 2's refused commits: ${second.refused().join(", ") || "none"}`);
  expect(first.processed() - before).toBeGreaterThan(0);
  expect(first.refused()).toEqual([]);
  // The zombie's commit was refused (its generation was over, or its
  // transaction timed out), never written.
  expect(second.refused().length).toBeGreaterThan(0);
  expect(got.length).toBe(expected.length);
  expect(got.sort()).toEqual(expected);
}, 180_000);
