// runWorkers without Kafka: the supervisor policy (backoff, restart limit,
// status aggregation, drain, kill on timeout) against fake members and a
// manual clock; option validation; real member processes for the failures
// that need no broker (bad module/export, bad job, shared state dir, a
// member that keeps dying).
import diagnostics from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  type JobFactory,
  runWorkers,
  WindowingError,
  type WorkersEvent,
  type WorkersOptions,
} from "../src/index.js";
import type { MemberMessage } from "../src/internal/worker-protocol.js";
import {
  backoffDelay,
  type MemberCallbacks,
  type SupervisorClock,
  WorkerSupervisor,
} from "../src/internal/worker-supervisor.js";
import { build, type WorkersJobArgs } from "./fixtures/workers-job.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, "fixtures/workers-job.ts");
const tsconfig = path.join(here, "../tsconfig.json");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// A user factory type-checks as a JobFactory.
const typed: JobFactory<WorkersJobArgs> = build;
void typed;

class ManualClock implements SupervisorClock {
  t = 0;
  private seq = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as number);
  }
  /** Advances time, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
  pendingDelays(): number[] {
    return [...this.timers.values()].map((x) => x.at - this.t);
  }
}

interface Fake {
  member: number;
  incarnation: number;
  pid: number;
  cb: MemberCallbacks;
  stops: number;
  kills: number;
  send(msg: MemberMessage): void;
  exit(code: number | null, signal?: string | null): void;
}

function harness(
  overrides: Partial<{
    workers: number;
    maxRestarts: number;
    startTimeoutMs: number;
    stopTimeoutMs: number;
  }> = {},
) {
  const clock = new ManualClock();
  const fakes: Fake[] = [];
  const events: WorkersEvent[] = [];
  let pid = 1000;
  const sup = new WorkerSupervisor({
    workers: overrides.workers ?? 2,
    restart: {
      maxRestarts: overrides.maxRestarts ?? 3,
      initialDelayMs: 100,
      maxDelayMs: 1000,
      resetAfterMs: 10_000,
    },
    startTimeoutMs: overrides.startTimeoutMs ?? 5000,
    stopTimeoutMs: overrides.stopTimeoutMs ?? 2000,
    clock,
    publish: (e) => events.push(e),
    spawn: (member, incarnation, cb) => {
      const f: Fake = {
        member,
        incarnation,
        pid: ++pid,
        cb,
        stops: 0,
        kills: 0,
        send: (msg) => cb.onMessage(msg),
        exit: (code, signal = null) => cb.onExit(code, signal),
      };
      fakes.push(f);
      return {
        pid: f.pid,
        stop: () => {
          f.stops++;
        },
        kill: () => {
          f.kills++;
        },
        output: () => "boom at line 3\n",
      };
    },
  });
  const current = (member: number) => fakes.filter((f) => f.member === member).at(-1) as Fake;
  return { sup, clock, fakes, events, current };
}

describe("backoffDelay", () => {
  it("doubles from initialDelayMs and is capped at maxDelayMs", () => {
    const p = { maxRestarts: 10, initialDelayMs: 100, maxDelayMs: 1000, resetAfterMs: 0 };
    expect([1, 2, 3, 4, 5, 6, 50].map((n) => backoffDelay(p, n))).toEqual([
      100, 200, 400, 800, 1000, 1000, 1000,
    ]);
  });
});

describe("WorkerSupervisor", () => {
  it("aggregates status: opening until all ready, open, degraded while one restarts", async () => {
    const { sup, current } = harness();
    expect(sup.status).toBe("closed");
    const started = sup.start();
    expect(sup.status).toBe("opening");
    current(0).send({ type: "ready" });
    expect(sup.status).toBe("opening");
    expect(sup.memberStatus.map((m) => m.state)).toEqual(["ready", "starting"]);
    current(1).send({ type: "ready" });
    await started;
    expect(sup.status).toBe("open");
    current(1).send({ type: "progress", jobStatus: "open", records: 42 });
    current(1).exit(null, "SIGKILL");
    expect(sup.status).toBe("degraded");
    expect(sup.memberStatus[1]).toMatchObject({
      state: "restarting",
      pid: undefined,
      records: 42,
      lastExit: {
        code: null,
        signal: "SIGKILL",
        reason: "killed by SIGKILL; stderr: boom at line 3",
      },
    });
  });

  it("restarts a crashed member with doubling backoff and gives up past maxRestarts with a coded error", async () => {
    const { sup, clock, current, events } = harness({ maxRestarts: 3 });
    const started = sup.start();
    current(0).send({ type: "ready" });
    current(1).send({ type: "ready" });
    await started;
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      current(0).send({ type: "error", error: { name: "Error", message: `bad ${i}` } });
      current(0).exit(1);
      delays.push(...clock.pendingDelays());
      clock.advance(5000);
      expect(current(0).incarnation).toBe(i + 1);
      current(0).send({ type: "ready" });
      expect(sup.status).toBe("open");
    }
    expect(delays).toEqual([100, 200, 400]);
    expect(sup.memberStatus[0]).toMatchObject({ restarts: 3, incarnation: 3 });
    // the fourth crash in a row is one too many
    current(0).exit(1);
    expect(sup.status).toBe("failed");
    expect(sup.error?.code).toBe("WINDOWING_WORKER_RESTARTS_EXHAUSTED");
    expect(sup.error?.message).toMatch(/member 0 crashed 4 times in a row/);
    // the healthy member is drained
    expect(current(1).stops).toBe(1);
    current(1).exit(0);
    await expect(sup.done).rejects.toMatchObject({ code: "WINDOWING_WORKER_RESTARTS_EXHAUSTED" });
    expect(events.filter((e) => e.event === "restart").map((e) => e.delayMs)).toEqual([
      100, 200, 400,
    ]);
    expect(events.at(-1)).toMatchObject({ event: "exit", member: 1, code: 0 });
    expect(events.some((e) => e.event === "failed")).toBe(true);
    // stop after giving up still resolves
    await sup.stop();
    expect(sup.status).toBe("failed");
  });

  it("forgets earlier crashes once a member stayed ready for resetAfterMs", async () => {
    const { sup, clock, current } = harness({ maxRestarts: 1, workers: 1 });
    const started = sup.start();
    current(0).send({ type: "ready" });
    await started;
    for (let i = 0; i < 4; i++) {
      clock.advance(10_000);
      current(0).exit(1);
      expect(sup.status).toBe("degraded");
      clock.advance(100);
      current(0).send({ type: "ready" });
    }
    expect(sup.status).toBe("open");
    expect(sup.memberStatus[0]?.restarts).toBe(4);
  });

  it("a fatal member (bad module or job) fails at once, without restarts", async () => {
    const { sup, current } = harness();
    const started = sup.start();
    current(0).send({
      type: "fatal",
      error: {
        name: "WindowingError",
        code: "WINDOWING_WORKER_FAILED",
        message: "no export build",
      },
    });
    current(0).exit(78);
    await expect(started).rejects.toMatchObject({
      code: "WINDOWING_WORKER_FAILED",
      message: expect.stringContaining("no export build"),
    });
    expect(current(1).stops).toBe(1);
    current(1).exit(0);
    await expect(sup.done).rejects.toBeInstanceOf(WindowingError);
  });

  it("kills a member that is not ready within startTimeoutMs and counts it as a crash", async () => {
    const { sup, clock, current, fakes } = harness({ workers: 1, startTimeoutMs: 1000 });
    void sup.start();
    clock.advance(999);
    expect(current(0).kills).toBe(0);
    clock.advance(1);
    expect(current(0).kills).toBe(1);
    current(0).exit(null, "SIGKILL");
    expect(sup.memberStatus[0]?.lastExit?.reason).toBe("not ready within 1000 ms");
    clock.advance(100);
    expect(fakes).toHaveLength(2);
  });

  it("stop() drains every member, cancels pending restarts, SIGKILLs one stuck past stopTimeoutMs; idempotent", async () => {
    const { sup, clock, current, fakes, events } = harness({ workers: 3, stopTimeoutMs: 2000 });
    const started = sup.start();
    for (const m of [0, 1, 2]) current(m).send({ type: "ready" });
    await started;
    current(2).exit(1); // restarting, backoff pending
    const stopped = sup.stop();
    expect(sup.stop()).toBe(stopped);
    expect(sup.status).toBe("closing");
    expect([current(0).stops, current(1).stops]).toEqual([1, 1]);
    current(0).send({ type: "stopping" });
    current(0).exit(0);
    clock.advance(2000);
    expect(current(1).kills).toBe(1);
    current(1).exit(null, "SIGKILL");
    await stopped;
    expect(sup.status).toBe("closed");
    await expect(sup.done).resolves.toBeUndefined();
    expect(fakes).toHaveLength(3); // member 2 was not restarted
    expect(sup.memberStatus.map((m) => m.state)).toEqual(["stopped", "stopped", "stopped"]);
    expect(sup.memberStatus[1]?.lastExit?.reason).toBe("did not drain within 2000 ms");
    expect(events.filter((e) => e.event === "kill")).toHaveLength(1);
  });

  it("stop() while starting rejects start() with WINDOWING_JOB_CLOSED", async () => {
    const { sup, current } = harness({ workers: 1 });
    const started = sup.start();
    const stopped = sup.stop();
    current(0).exit(0);
    await stopped;
    await expect(started).rejects.toMatchObject({ code: "WINDOWING_JOB_CLOSED" });
  });

  it("the error codes are WindowingErrors, not retryable", () => {
    for (const code of [
      "WINDOWING_WORKER_FAILED",
      "WINDOWING_WORKER_RESTARTS_EXHAUSTED",
    ] as const) {
      const err = new WindowingError(code, "m");
      expect(WindowingError.isInstance(err)).toBe(true);
      expect(err.code).toBe(code);
      expect(err.retryable).toBe(false);
    }
  });
});

describe("runWorkers options", () => {
  const base = (): WorkersOptions => ({
    module: fixture,
    workers: 1,
    stateDir: path.join(tmpdir(), "never-created"),
    handleSignals: false,
  });
  const cases: [string, Partial<WorkersOptions> | null, RegExp][] = [
    ["no options", null, /options object/],
    ["missing module", { module: "" }, /module is required/],
    ["module not found", { module: path.join(here, "nope.js") }, /does not exist/],
    ["non-file URL", { module: new URL("https://example.invalid/x.js") }, /file: URL/],
    ["workers 0", { workers: 0 }, /workers must be an integer/],
    ["workers 1.5", { workers: 1.5 }, /workers must be an integer/],
    ["no stateDir", { stateDir: "" }, /stateDir is required/],
    ["args with a function", { args: { f: () => 1 } }, /structured-cloneable/],
    ["env not strings", { env: { A: 1 as unknown as string } }, /env must be/],
    ["bad duration", { stopTimeoutMs: "soon" }, /stopTimeoutMs/],
    ["negative maxRestarts", { restart: { maxRestarts: -1 } }, /maxRestarts/],
    ["max below initial", { restart: { initialDelayMs: 5000, maxDelayMs: 10 } }, /maxDelayMs/],
    ["empty exportName", { exportName: "" }, /exportName/],
  ];
  for (const [name, patch, msg] of cases) {
    it(`rejects ${name} with WINDOWING_INVALID_OPTIONS before spawning`, async () => {
      const opts = patch === null ? null : { ...base(), ...patch };
      await expect(runWorkers(opts as WorkersOptions)).rejects.toMatchObject({
        code: "WINDOWING_INVALID_OPTIONS",
        message: expect.stringMatching(msg),
      });
    });
  }
});

describe("runWorkers member processes (no broker needed)", () => {
  const run = (exportName: string, extra: Partial<WorkersOptions> = {}) => {
    const stateDir = mkdtempSync(path.join(tmpdir(), "wworkers-unit-"));
    dirs.push(stateDir);
    const args: WorkersJobArgs = {
      brokers: ["127.0.0.1:1"],
      app: "never-started",
      source: "none",
      output: "none",
    };
    return runWorkers({
      module: pathToFileURL(fixture),
      exportName,
      workers: 2,
      stateDir,
      args,
      env: { TSX_TSCONFIG_PATH: tsconfig },
      handleSignals: false,
      restart: { maxRestarts: 2, initialDelayMs: 10, maxDelayMs: 20 },
      ...extra,
    });
  };

  it("a missing export, a non-job, an incomplete pipeline or a shared stateDir fail with WINDOWING_WORKER_FAILED and the reason", async () => {
    const channelEvents: WorkersEvent[] = [];
    const listener = (m: unknown) => channelEvents.push(m as WorkersEvent);
    diagnostics.subscribe("sluice:job:workers", listener);
    try {
      await expect(run("nope")).rejects.toMatchObject({
        code: "WINDOWING_WORKER_FAILED",
        message: expect.stringMatching(/no exported function "nope"/),
      });
      await expect(run("notAFunction")).rejects.toMatchObject({
        code: "WINDOWING_WORKER_FAILED",
        message: expect.stringMatching(/no exported function "notAFunction" \(found number\)/),
      });
      await expect(run("notAJob")).rejects.toMatchObject({
        code: "WINDOWING_WORKER_FAILED",
        message: expect.stringMatching(/must return a Job/),
      });
      await expect(run("incomplete")).rejects.toMatchObject({
        code: "WINDOWING_WORKER_FAILED",
        message: expect.stringMatching(/WINDOWING_PIPELINE_INCOMPLETE/),
      });
      await expect(run("throws")).rejects.toMatchObject({
        code: "WINDOWING_WORKER_FAILED",
        message: expect.stringMatching(
          /WINDOWING_INVALID_OPTIONS: .*building the job: createJob needs kafka/,
        ),
      });
      await expect(run("sharedState")).rejects.toMatchObject({
        code: "WINDOWING_WORKER_FAILED",
        message: expect.stringMatching(/must not share state directories/),
      });
    } finally {
      diagnostics.unsubscribe("sluice:job:workers", listener);
    }
    // no restarts for fatal members; every spawned process exited
    expect(channelEvents.filter((e) => e.event === "restart")).toHaveLength(0);
    const spawned = channelEvents.filter((e) => e.event === "spawn").map((e) => e.pid);
    const exited = channelEvents.filter((e) => e.event === "exit").map((e) => e.pid);
    expect(spawned.length).toBeGreaterThanOrEqual(5);
    expect(exited.sort()).toEqual(spawned.sort());
    for (const pid of spawned) expect(alive(pid as number)).toBe(false);
  }, 60_000);

  it("a member that keeps dying is restarted with backoff, then WINDOWING_WORKER_RESTARTS_EXHAUSTED names the exit", async () => {
    const channelEvents: WorkersEvent[] = [];
    const listener = (m: unknown) => channelEvents.push(m as WorkersEvent);
    diagnostics.subscribe("sluice:job:workers", listener);
    try {
      await expect(run("dies", { workers: 1 })).rejects.toMatchObject({
        code: "WINDOWING_WORKER_RESTARTS_EXHAUSTED",
        message: expect.stringMatching(/crashed 3 times in a row .*exited with code 3/),
      });
    } finally {
      diagnostics.unsubscribe("sluice:job:workers", listener);
    }
    expect(channelEvents.filter((e) => e.event === "restart").map((e) => e.delayMs)).toEqual([
      10, 20,
    ]);
    expect(channelEvents.filter((e) => e.event === "spawn")).toHaveLength(3);
    expect(channelEvents.some((e) => e.event === "failed")).toBe(true);
  }, 60_000);
});

it("a job that fails after starting makes its member exit with the runtime's reason, and it is restarted", async () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), "wworkers-unit-"));
  dirs.push(stateDir);
  const channelEvents: WorkersEvent[] = [];
  const listener = (m: unknown) => channelEvents.push(m as WorkersEvent);
  diagnostics.subscribe("sluice:job:workers", listener);
  try {
    await expect(
      (async () => {
        const workers = await runWorkers({
          module: fixture,
          exportName: "closesItself",
          workers: 1,
          stateDir,
          env: { TSX_TSCONFIG_PATH: tsconfig },
          handleSignals: false,
          restart: { maxRestarts: 1, initialDelayMs: 10 },
        });
        expect(workers.status).toBe("open");
        await workers.done;
      })(),
    ).rejects.toMatchObject({
      code: "WINDOWING_WORKER_RESTARTS_EXHAUSTED",
      message: expect.stringMatching(/the job closed unexpectedly: sluice job fake failed: boom/),
    });
  } finally {
    diagnostics.unsubscribe("sluice:job:workers", listener);
  }
  expect(channelEvents.filter((e) => e.event === "exit").map((e) => e.code)).toEqual([1, 1]);
  expect(channelEvents.filter((e) => e.event === "restart")).toHaveLength(1);
}, 60_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
