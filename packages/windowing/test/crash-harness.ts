// The SIGKILL harness of the broker crash tests: job processes started from a
// fixture module, killed at random moments while the input is produced, then
// one last process run until the group's committed offsets reach the end of
// the source.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Admin } from "kafkajs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");

export interface CrashJob {
  child: ChildProcess;
  ready: Promise<void>;
  /** Records this process has processed so far (from its `records` lines). */
  processed: () => number;
}

const t0 = Date.now();
export const log = (m: string): void => {
  if (process.env.SLUICE_TEST_VERBOSE) console.log(`[crash +${Date.now() - t0} ms] ${m}`);
};
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `fixtures/<fixture>` in a child process (registered in `children`
 * for cleanup). It prints `ready` once started and `records <p> <n>` lines.
 */
export function startJob(
  children: ChildProcess[],
  envs: Record<string, string>,
  fixture = "crash-job.ts",
): CrashJob {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "fixtures", fixture)], {
    cwd: root,
    env: {
      ...process.env,
      ...envs,
      TSX_TSCONFIG_PATH: path.join(root, "packages/windowing/tsconfig.json"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
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

/**
 * Kills job processes `kills` times at random moments (seeded): one kill in
 * three soon after start (restore, first commits), the others once the
 * process has handled a random share of `total` records, so that open
 * transactions, restores from a local copy that is behind, and replays all
 * happen. Then waits for `producing`, starts the last process and waits until
 * the group `groupId` has committed the end of `source`. Returns that process.
 */
export async function killRepeatedly(opts: {
  admin: Admin;
  children: ChildProcess[];
  env: Record<string, string>;
  groupId: string;
  source: string;
  total: number;
  kills: number;
  seed: number;
  producing: Promise<void>;
  fixture?: string;
}): Promise<{ kills: number; last: CrashJob }> {
  const start = () => startJob(opts.children, opts.env, opts.fixture);
  let kills = 0;
  let seed = opts.seed;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  while (kills < opts.kills) {
    const job = start();
    await job.ready;
    const early = rand() < 1 / 3;
    const quota = early ? 0 : Math.floor((rand() * (1.5 * opts.total)) / opts.kills);
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
  await opts.producing;
  const last = start();
  await last.ready;
  log("last job ready");
  const ends = await opts.admin.fetchTopicOffsets(opts.source);
  const deadline = Date.now() + 150_000;
  for (;;) {
    const committed = await opts.admin.fetchOffsets({
      groupId: opts.groupId,
      topics: [opts.source],
    });
    const behind = ends.filter((e) => {
      const c = committed[0]?.partitions.find((x) => x.partition === e.partition)?.offset;
      return c === undefined || BigInt(c) < BigInt(e.high);
    }).length;
    log(`partitions behind: ${behind}`);
    if (behind === 0 || Date.now() > deadline) break;
    await sleep(1000);
  }
  return { kills, last };
}

/** SIGTERM, then SIGKILL after 15 s; resolves once the process exited. */
export async function stopJob(job: CrashJob): Promise<void> {
  job.child.kill("SIGTERM");
  const forced = setTimeout(() => job.child.kill("SIGKILL"), 15_000);
  if (job.child.exitCode === null && job.child.signalCode === null) {
    await new Promise((r) => job.child.once("exit", r));
  }
  clearTimeout(forced);
}
