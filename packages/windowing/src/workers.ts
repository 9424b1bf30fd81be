import { type ChildProcess, fork } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Duration, parseDuration } from "@sluice/schema";
import { publishWorkersEvent } from "./internal/worker-channel.js";
import { isMemberMessage, type ParentMessage } from "./internal/worker-protocol.js";
import { type MemberHandle, WorkerSupervisor } from "./internal/worker-supervisor.js";
import type { Job } from "./job.js";
import { WindowingError } from "./windowing-error.js";

/**
 * What a member's factory receives: which member it is and where its state
 * lives. Pass `stateDir` to `createJob` — members never share a LevelDB
 * directory (a member whose job uses another directory fails with
 * `WINDOWING_WORKER_FAILED`).
 *
 * @typeParam A - the type of `args`
 * @since 0.1.0
 */
export interface WorkerContext<A = unknown> {
  /** 0-based member index, stable across restarts of that member. */
  member: number;
  /** Number of members. */
  workers: number;
  /** How many times this member was restarted before this run (0 first). */
  incarnation: number;
  /** `<stateDir>/member-<member>`: this member's own state directory. */
  stateDir: string;
  /** The `args` given to {@link runWorkers} (structured-cloned). */
  args: A;
}

/**
 * The export a worker module provides: builds the member's job. Everything
 * with closures (filter, map, keyBy, aggregators, sinks) is created here,
 * inside the member process.
 *
 * @example
 * ```ts
 * export default function build(ctx: WorkerContext<{ brokers: string[] }>) {
 *   return createJob({ brokers: ctx.args.brokers, applicationId: "agg",
 *     source: { topic: "events", schema: UserEvent, eventTime: "ts" }, stateDir: ctx.stateDir })
 *     .window(tumbling({ size: "1m" })).aggregate(count()).to({ topic: "counts" });
 * }
 * ```
 * @since 0.1.0
 */
export type JobFactory<A = unknown> = (
  ctx: WorkerContext<A>,
) => Job<unknown, unknown> | Promise<Job<unknown, unknown>>;

/**
 * Restart policy of crashed members: exponential backoff from
 * `initialDelayMs`, doubling up to `maxDelayMs`; after `maxRestarts` crashes
 * in a row the workers stop with `WINDOWING_WORKER_RESTARTS_EXHAUSTED`. A
 * member that stayed ready for `resetAfterMs` starts its count afresh.
 *
 * @since 0.1.0
 */
export interface WorkersRestartOptions {
  /** @defaultValue 5 */
  maxRestarts?: number;
  /** @defaultValue 500 ms */
  initialDelayMs?: Duration;
  /** @defaultValue 30 s */
  maxDelayMs?: Duration;
  /** @defaultValue 60 s */
  resetAfterMs?: Duration;
}

/**
 * Options of {@link runWorkers}.
 *
 * @typeParam A - the type of `args`
 * @since 0.1.0
 */
export interface WorkersOptions<A = unknown> {
  /** The worker module: a file path or `file:` URL (e.g. `new URL("./job.js", import.meta.url)`). */
  module: string | URL;
  /** Name of the exported {@link JobFactory}. @defaultValue "default" */
  exportName?: string;
  /** Number of members (processes). @defaultValue `os.availableParallelism()` */
  workers?: number;
  /** Parent of the members' state directories (`<stateDir>/member-<n>`). */
  stateDir: string;
  /** Passed to the factory as `ctx.args`; must be structured-cloneable. */
  args?: A;
  /** Extra environment variables of the members (added to `process.env`). */
  env?: Record<string, string>;
  /** Node flags of the members. @defaultValue `process.execArgv` */
  execArgv?: string[];
  /** Restart policy of crashed members. */
  restart?: WorkersRestartOptions;
  /** A member not ready (joined its group) this long after spawning is killed and counted as a crash. @defaultValue 120 s */
  startTimeoutMs?: Duration;
  /** A member still draining this long after `stop()` is killed with SIGKILL. @defaultValue 60 s */
  stopTimeoutMs?: Duration;
  /** Drain all members on SIGTERM/SIGINT. @defaultValue true */
  handleSignals?: boolean;
}

/**
 * Aggregated status of {@link Workers}: `'opening'` until every member is
 * ready once, `'open'` when all are ready, `'degraded'` while some member is
 * restarting, `'closing'`/`'closed'` around `stop()`, `'failed'` after giving up.
 *
 * @since 0.1.0
 */
export type WorkersStatus = "opening" | "open" | "degraded" | "closing" | "closed" | "failed";

/**
 * State of one member: `'starting'` (spawned, job starting), `'ready'`
 * (joined the group), `'restarting'` (crashed, waiting out its backoff),
 * `'stopping'`, `'stopped'`, `'failed'`.
 *
 * @since 0.1.0
 */
export type MemberState = "starting" | "ready" | "restarting" | "stopping" | "stopped" | "failed";

/**
 * Status of one member.
 *
 * @since 0.1.0
 */
export interface WorkerMemberStatus {
  /** 0-based member index. */
  member: number;
  /** Process id of the current incarnation (undefined while restarting). */
  pid: number | undefined;
  /** Lifecycle state of the member. */
  state: MemberState;
  /** The member's `job.status` as last reported. */
  jobStatus: string;
  /** Which process of this member is (or was last) running: 0 for the first. */
  incarnation: number;
  /** Restarts of this member so far. */
  restarts: number;
  /** Records processed by this member over all its incarnations (`sluice:job:records`). */
  records: number;
  /** How the previous process of this member ended, with the reason. */
  lastExit?: { code: number | null; signal: string | null; reason?: string; at: number };
}

/**
 * Events published on the `sluice:job:workers` diagnostics channel.
 *
 * @since 0.1.0
 */
export interface WorkersEvent {
  /** What happened: a member process was spawned, became ready, exited, is restarted after `delayMs`, was killed (timeout); the workers began to stop; the workers gave up. */
  event: "spawn" | "ready" | "exit" | "restart" | "kill" | "stop" | "failed";
  /** Member index (member events). */
  member?: number;
  /** Process id (member events). */
  pid?: number | undefined;
  /** Which process of the member (member events). */
  incarnation?: number;
  /** Exit code (`exit`), or the error code (`failed`). */
  code?: number | null | string;
  /** Signal that ended the process (`exit`). */
  signal?: string | null;
  /** Backoff before the restart (`restart`). */
  delayMs?: number;
  /** Why: the member's error, signal or exit code, a timeout, or why the workers gave up. */
  reason?: string;
  /** `file:` URL of the worker module. */
  module?: string;
}

/**
 * A running group of job members, from {@link runWorkers}.
 *
 * @since 0.1.0
 */
export interface Workers {
  /** Aggregated status. */
  readonly status: WorkersStatus;
  /** Per-member status. */
  readonly members: readonly WorkerMemberStatus[];
  /** Why the workers gave up (status `'failed'`). */
  readonly error: WindowingError | undefined;
  /** Resolves after `stop()` has drained every member; rejects with the error when the workers gave up. */
  readonly done: Promise<void>;
  /** Drains every member (each commits its state, outputs and offsets) and waits for them to exit. Idempotent. */
  stop(): Promise<void>;
  /** Same as `stop()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

function invalid(message: string, cause?: unknown): never {
  throw new WindowingError(
    "WINDOWING_INVALID_OPTIONS",
    message,
    cause === undefined ? {} : { cause },
  );
}

function dur(value: Duration | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(value, name);
  } catch (err) {
    invalid((err as Error).message, err);
  }
  return ms;
}

function moduleUrl(module: unknown): string {
  let file: string;
  if (module instanceof URL) {
    if (module.protocol !== "file:") invalid(`module must be a file: URL; got ${module.href}`);
    file = fileURLToPath(module);
  } else if (typeof module === "string" && module.length > 0) {
    file = module.startsWith("file:") ? fileURLToPath(module) : path.resolve(module);
  } else {
    invalid("module is required: a file path or file: URL of a module exporting a job factory");
  }
  if (!existsSync(file) || !statSync(file).isFile()) invalid(`module ${file} does not exist`);
  return pathToFileURL(file).href;
}

/** The member entry: built `dist/internal/worker-entry.js`, or the source under tsx. */
function memberEntry(): { file: string; execArgv: string[] } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.join(here, "internal", "worker-entry.js");
  if (existsSync(js)) return { file: js, execArgv: [] };
  // Running from sources (tests, tsx): the entry is TypeScript.
  const ts = path.join(here, "internal", "worker-entry.ts");
  if (existsSync(ts)) return { file: ts, execArgv: ["--import", "tsx"] };
  throw new WindowingError(
    "WINDOWING_WORKER_FAILED",
    `the member entry worker-entry.js is missing next to ${here}; reinstall @sluice/windowing`,
  );
}

interface Resolved {
  module: string;
  exportName: string;
  workers: number;
  stateDir: string;
  args: unknown;
  env: Record<string, string>;
  execArgv: string[] | undefined;
  restart: {
    maxRestarts: number;
    initialDelayMs: number;
    maxDelayMs: number;
    resetAfterMs: number;
  };
  startTimeoutMs: number;
  stopTimeoutMs: number;
  handleSignals: boolean;
}

/** @internal validates {@link WorkersOptions} (exported for unit tests) */
export function resolveWorkersOptions(opts: WorkersOptions): Resolved {
  if (typeof opts !== "object" || opts === null)
    invalid("runWorkers needs an options object { module, stateDir, workers }");
  const module = moduleUrl(opts.module);
  const exportName = opts.exportName ?? "default";
  if (typeof exportName !== "string" || exportName.length === 0)
    invalid(`exportName must be a non-empty string; got ${JSON.stringify(exportName)}`);
  const workers = opts.workers ?? os.availableParallelism();
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024)
    invalid(`workers must be an integer from 1 to 1024; got ${String(workers)}`);
  if (typeof opts.stateDir !== "string" || opts.stateDir.length === 0)
    invalid("stateDir is required: each member keeps its state in <stateDir>/member-<n>");
  let args: unknown;
  try {
    args = structuredClone(opts.args);
  } catch (err) {
    invalid(
      `args must be structured-cloneable (no functions or class instances with closures): ${(err as Error).message}`,
      err,
    );
  }
  const env = opts.env ?? {};
  if (
    typeof env !== "object" ||
    env === null ||
    Object.values(env).some((v) => typeof v !== "string")
  )
    invalid("env must be an object of string values");
  if (
    opts.execArgv !== undefined &&
    !(Array.isArray(opts.execArgv) && opts.execArgv.every((a) => typeof a === "string"))
  )
    invalid("execArgv must be an array of strings");
  const r = opts.restart ?? {};
  if (typeof r !== "object" || r === null) invalid("restart must be an object");
  const maxRestarts = r.maxRestarts ?? 5;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0)
    invalid(`restart.maxRestarts must be a non-negative integer; got ${String(maxRestarts)}`);
  const restart = {
    maxRestarts,
    initialDelayMs: dur(r.initialDelayMs, 500, "restart.initialDelayMs"),
    maxDelayMs: dur(r.maxDelayMs, 30_000, "restart.maxDelayMs"),
    resetAfterMs: dur(r.resetAfterMs, 60_000, "restart.resetAfterMs"),
  };
  if (restart.maxDelayMs < restart.initialDelayMs)
    invalid("restart.maxDelayMs must not be below restart.initialDelayMs");
  const startTimeoutMs = dur(opts.startTimeoutMs, 120_000, "startTimeoutMs");
  const stopTimeoutMs = dur(opts.stopTimeoutMs, 60_000, "stopTimeoutMs");
  if (startTimeoutMs <= 0 || stopTimeoutMs <= 0)
    invalid("startTimeoutMs and stopTimeoutMs must be positive");
  const handleSignals = opts.handleSignals ?? true;
  if (typeof handleSignals !== "boolean") invalid("handleSignals must be a boolean");
  return {
    module,
    exportName,
    workers,
    stateDir: path.resolve(opts.stateDir),
    args,
    env: { ...env },
    execArgv: opts.execArgv ? [...opts.execArgv] : undefined,
    restart,
    startTimeoutMs,
    stopTimeoutMs,
    handleSignals,
  };
}

const TAIL = 4000;

function forkMember(
  o: Resolved,
  entry: { file: string; execArgv: string[] },
  member: number,
  incarnation: number,
  callbacks: {
    onMessage: (m: import("./internal/worker-protocol.js").MemberMessage) => void;
    onExit: (code: number | null, signal: string | null) => void;
  },
): MemberHandle {
  const base = o.execArgv ?? process.execArgv;
  // add the entry's flags (tsx for sources) unless the parent already has them
  const present = (flag: string, value: string) =>
    base.some((a, i) => (a === flag && base[i + 1] === value) || a === `${flag}=${value}`);
  const extra: string[] = [];
  for (let i = 0; i < entry.execArgv.length; i += 2) {
    const [flag, value] = [entry.execArgv[i] as string, entry.execArgv[i + 1] as string];
    if (!present(flag, value)) extra.push(flag, value);
  }
  const execArgv = [...base, ...extra];
  const child: ChildProcess = fork(entry.file, [], {
    execArgv,
    env: {
      ...process.env,
      ...o.env,
      SLUICE_WORKER_MEMBER: String(member),
      SLUICE_WORKER_COUNT: String(o.workers),
    },
    serialization: "advanced",
    stdio: ["ignore", "inherit", "pipe", "ipc"],
  });
  let tail = "";
  child.stderr?.on("data", (d: Buffer) => {
    process.stderr.write(d);
    tail = (tail + d.toString("utf8")).slice(-TAIL);
  });
  child.on("message", (m) => {
    if (isMemberMessage(m)) callbacks.onMessage(m);
  });
  let exited = false;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
    if (exited) return;
    exited = true;
    callbacks.onExit(code, signal);
  };
  child.once("exit", onExit);
  child.once("error", (err) => {
    tail += `\n${err.message}`;
    if (child.exitCode === null && child.signalCode === null && child.pid === undefined)
      onExit(null, null);
  });
  const init: ParentMessage = {
    type: "init",
    module: o.module,
    exportName: o.exportName,
    member,
    workers: o.workers,
    incarnation,
    stateDir: path.join(o.stateDir, `member-${member}`),
    args: o.args,
  };
  child.send(init, (err) => {
    if (err) tail += `\ncould not send init: ${err.message}`;
  });
  return {
    pid: child.pid,
    stop: () => {
      if (child.connected) child.send({ type: "stop" } satisfies ParentMessage, () => {});
      else if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
    output: () => tail.split("\n").slice(-20).join("\n"),
  };
}

/**
 * Runs a job on all cores: `workers` member processes each import `module`,
 * build the job with its exported {@link JobFactory} and join the same
 * consumer group, so Kafka spreads the partitions (and their state) over
 * them. Crashed members are restarted with bounded backoff; `stop()` (or
 * SIGTERM/SIGINT) drains them all. Member events go to the
 * `sluice:job:workers` diagnostics channel.
 *
 * Members are child processes (not worker threads): a crash, OOM or native
 * fault takes down one member only, each has its own heap, and a member can
 * be SIGKILLed on its own — exactly-once recovery is the same as for a
 * separate process.
 *
 * @param opts - see {@link WorkersOptions}
 * @returns the running {@link Workers}, once every member has joined the group
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for an invalid option (before anything starts); `WINDOWING_WORKER_FAILED` when a member cannot load the module or build/start its job; `WINDOWING_WORKER_RESTARTS_EXHAUSTED` when members keep crashing during startup; `WINDOWING_JOB_CLOSED` when stopped while starting
 * @example
 * ```ts
 * const workers = await runWorkers({
 *   module: new URL("./job.js", import.meta.url),
 *   workers: 4,
 *   stateDir: "./state",
 *   args: { brokers: ["127.0.0.1:9092"] },
 * });
 * // ... later
 * await workers.stop();
 * ```
 * @since 0.1.0
 */
export async function runWorkers<A = unknown>(opts: WorkersOptions<A>): Promise<Workers> {
  const o = resolveWorkersOptions(opts as WorkersOptions);
  const entry = memberEntry();
  const supervisor = new WorkerSupervisor({
    workers: o.workers,
    restart: o.restart,
    startTimeoutMs: o.startTimeoutMs,
    stopTimeoutMs: o.stopTimeoutMs,
    spawn: (member, incarnation, callbacks) => forkMember(o, entry, member, incarnation, callbacks),
    publish: (event) => publishWorkersEvent({ module: o.module, ...event }),
  });
  let onSignal: (() => void) | undefined;
  const removeSignals = () => {
    if (!onSignal) return;
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGINT", onSignal);
    onSignal = undefined;
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    if (!stopping) {
      stopping = supervisor.stop().finally(removeSignals);
    }
    return stopping;
  };
  if (o.handleSignals) {
    onSignal = () => void stop();
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }
  void supervisor.done.then(removeSignals, removeSignals);
  const workers: Workers = {
    get status() {
      return supervisor.status;
    },
    get members() {
      return supervisor.memberStatus;
    },
    get error() {
      return supervisor.error;
    },
    get done() {
      return supervisor.done;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
  try {
    await supervisor.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return workers;
}
