// Scaling 1 → 3 → 1 processes mid-stream (exactly-once): members join while
// events arrive, then two leave (SIGTERM, graceful); the read_committed
// output must equal the TestDriver's output for the same input exactly.
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
} {
  let processed = 0;
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
      if (text.includes("ready")) resolve();
    });
    child.once("exit", (code, signal) =>
      reject(new Error(`member exited (${code ?? signal}) before ready`)),
    );
  });
  ready.catch(() => {});
  return { child, ready, exited, processed: () => processed };
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
  let got: string[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    got = (await readAll(kafka, admin, output)).map((r) => {
      const w = JSON.parse(r.value as string) as WindowResult<unknown>;
      return `${w.id}=${JSON.stringify(w.value)}`;
    });
    log(`output ${got.length}/${expected.length}`);
    if (got.length >= expected.length) break;
    await sleep(1000);
  }
  first.child.kill("SIGTERM");
  await first.exited;
  // the scale-out really shared the work
  expect(second.processed() + third.processed()).toBeGreaterThan(0);
  expect(first.processed()).toBeGreaterThan(0);
  expect(got.length).toBe(expected.length);
  expect(got.sort()).toEqual(expected);
}, 180_000);
