// Crash atomicity and disk errors with real processes and a real LevelDB.
// Slow (child processes), so it runs with the integration project.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { openStateStore } from "../src/index.js";
import { applyRound, Model } from "./fixtures/rounds.js";
import { collect, tempDir } from "./helpers.js";

const pkgDir = fileURLToPath(new URL("..", import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

function startChild(dir: string): { child: ChildProcess; ready: Promise<number> } {
  const child = spawn(process.execPath, ["--import", "tsx", fixture("crash-child.ts"), dir], {
    cwd: pkgDir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const ready = new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("exit", (code, signal) =>
      reject(new Error(`child exited early (${code ?? signal}): ${err}`)),
    );
  });
  return { child, ready };
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("crash atomicity", () => {
  it("after SIGKILL at random moments the store equals exactly its last completed checkpoint", async () => {
    const dir = tempDir();
    const model = new Model();
    let modelRounds = 0;
    const kills = 20;
    const seen: number[] = [];
    for (let k = 0; k < kills; k++) {
      const { child, ready } = startChild(dir);
      const resumedAt = await ready;
      expect(resumedAt).toBe(modelRounds); // the child resumed from the checkpoint we verified
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 250));
      await killed(child);

      const store = await openStateStore<number>({ dir, name: "crash" });
      const cp = await store.readCheckpoint(0);
      const rounds = cp === undefined ? 0 : Number(cp.sourceOffset);
      expect(rounds).toBeGreaterThanOrEqual(modelRounds);
      while (modelRounds < rounds) await applyRound(model, modelRounds++);
      seen.push(rounds);

      const p = store.partition(0);
      const kv = new Map(await collect(p.entries()));
      expect(kv.size).toBe(model.kv.size);
      expect(kv).toEqual(model.kv);
      if (rounds > 0) expect(kv.get("round")).toBe(rounds - 1);
      // windows through the time index, in end order, equal the model's
      const windows = await collect(p.windowsEndingBefore(Number.MAX_SAFE_INTEGER));
      const expected = [...model.windows.values()].sort(
        (a, b) =>
          a.windowEnd - b.windowEnd ||
          a.windowStart - b.windowStart ||
          (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
      );
      expect(windows).toEqual(expected);
      expect(cp?.streamTime ?? 0).toBe(rounds * 1000);
      await store.close();
    }
    // the kills landed after real progress, not all before the first checkpoint
    expect(seen[seen.length - 1]).toBeGreaterThan(kills / 4);
  }, 120_000);
});

describe("disk errors", () => {
  it("a checkpoint that cannot be written fails with STATE_CHECKPOINT_FAILED and leaves the previous one intact", async () => {
    const dir = tempDir();
    // 1 MiB file-size limit (in 512-byte blocks); SIGXFSZ ignored so writes fail with EFBIG
    const r = spawnSync(
      "sh",
      [
        "-c",
        `ulimit -f 2048; trap '' XFSZ; exec "${process.execPath}" --import tsx "${fixture("disk-full-child.ts")}" "${dir}"`,
      ],
      { cwd: pkgDir, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
      code: string;
      retryable: boolean;
      pending: string;
    };
    expect(result).toEqual({ code: "STATE_CHECKPOINT_FAILED", retryable: true, pending: "second" });

    const store = await openStateStore<string>({ dir, name: "full" });
    expect(await store.readCheckpoint(0)).toMatchObject({ sourceOffset: 1, streamTime: 1 });
    const p = store.partition(0);
    expect(await p.get("small")).toBe("first");
    expect(await p.get("big-0")).toBeUndefined();
    expect(await p.get("big-2999")).toBeUndefined();
    await store.close();
  }, 90_000);
});
