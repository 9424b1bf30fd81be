// The supervisor behind runWorkers: starts N members, restarts crashed ones
// with bounded exponential backoff, gives up (loudly) past a limit, drains
// all on stop. Process spawning and the clock are injected, so the policy is
// unit-tested without Kafka and without real processes.

import { WindowingError } from "../windowing-error.js";
import type { MemberState, WorkerMemberStatus, WorkersEvent, WorkersStatus } from "../workers.js";
import { describeWireError, type MemberMessage } from "./worker-protocol.js";

/** One running member process, as the supervisor sees it. */
export interface MemberHandle {
  readonly pid: number | undefined;
  /** Ask for a graceful drain (checkpoint, commit, exit 0). */
  stop(): void;
  /** Hard kill (SIGKILL). */
  kill(): void;
  /** The last lines the member wrote to stderr, for exit reasons. */
  output?(): string;
}

export interface MemberCallbacks {
  onMessage(msg: MemberMessage): void;
  onExit(code: number | null, signal: string | null): void;
}

export type SpawnMember = (
  member: number,
  incarnation: number,
  callbacks: MemberCallbacks,
) => MemberHandle;

export interface SupervisorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export const realClock: SupervisorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};

export interface RestartPolicy {
  maxRestarts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  resetAfterMs: number;
}

export interface SupervisorOptions {
  workers: number;
  spawn: SpawnMember;
  restart: RestartPolicy;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  clock?: SupervisorClock;
  publish?: (event: WorkersEvent) => void;
}

/** Delay before restart number `failures` (1-based): doubles, capped. */
export function backoffDelay(policy: RestartPolicy, failures: number): number {
  const exp = Math.min(30, Math.max(0, failures - 1));
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exp);
}

interface Member {
  index: number;
  handle: MemberHandle | undefined;
  incarnation: number;
  state: MemberState;
  /** Crashes in a row (reset after `resetAfterMs` of readiness). */
  failures: number;
  restarts: number;
  readyAt: number | undefined;
  jobStatus: string;
  records: number;
  recordsBefore: number;
  lastExit: WorkerMemberStatus["lastExit"];
  /** Why the current incarnation is going down (set before it exits). */
  reason: string | undefined;
  fatal: boolean;
  stopRequested: boolean;
  timer: unknown;
  killTimer: unknown;
  exited: Promise<void>;
  markExited: () => void;
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class WorkerSupervisor {
  private readonly opts: SupervisorOptions;
  private readonly clock: SupervisorClock;
  private readonly members: Member[] = [];
  private started = false;
  private everOpen = false;
  private stopping: Promise<void> | undefined;
  private closed = false;
  private failure: WindowingError | undefined;
  private readonly startup = deferred();
  private readonly finished = deferred();

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    // `done` rejects when the supervisor gives up; callers may not await it,
    // and status/error/the channel surface the failure too.
    this.finished.promise.catch(() => {});
    this.startup.promise.catch(() => {});
  }

  /** Resolves when the supervisor stopped; rejects with the error that made it give up. */
  get done(): Promise<void> {
    return this.finished.promise;
  }

  get error(): WindowingError | undefined {
    return this.failure;
  }

  get status(): WorkersStatus {
    if (this.failure) return "failed";
    if (!this.started || this.closed) return "closed";
    if (this.stopping) return "closing";
    if (this.members.every((m) => m.state === "ready")) return "open";
    return this.everOpen ? "degraded" : "opening";
  }

  get memberStatus(): WorkerMemberStatus[] {
    return this.members.map((m) => {
      const s: WorkerMemberStatus = {
        member: m.index,
        pid: m.handle?.pid,
        state: m.state,
        jobStatus: m.jobStatus,
        incarnation: m.incarnation,
        restarts: m.restarts,
        records: m.recordsBefore + m.records,
      };
      if (m.lastExit) s.lastExit = { ...m.lastExit };
      return s;
    });
  }

  /** Spawns every member; resolves once all are ready for the first time. */
  start(): Promise<void> {
    if (this.started) return this.startup.promise;
    this.started = true;
    for (let i = 0; i < this.opts.workers; i++) {
      const d = deferred();
      const m: Member = {
        index: i,
        handle: undefined,
        incarnation: 0,
        state: "starting",
        failures: 0,
        restarts: 0,
        readyAt: undefined,
        jobStatus: "closed",
        records: 0,
        recordsBefore: 0,
        lastExit: undefined,
        reason: undefined,
        fatal: false,
        stopRequested: false,
        timer: undefined,
        killTimer: undefined,
        exited: d.promise,
        markExited: d.resolve,
      };
      this.members.push(m);
    }
    for (const m of this.members) this.spawn(m);
    return this.startup.promise;
  }

  private emit(event: WorkersEvent): void {
    this.opts.publish?.(event);
  }

  private spawn(m: Member): void {
    const d = deferred();
    m.exited = d.promise;
    m.markExited = d.resolve;
    m.state = "starting";
    m.readyAt = undefined;
    m.reason = undefined;
    m.fatal = false;
    m.stopRequested = false;
    m.jobStatus = "opening";
    m.recordsBefore += m.records;
    m.records = 0;
    const incarnation = m.incarnation;
    let handle: MemberHandle;
    try {
      handle = this.opts.spawn(m.index, incarnation, {
        onMessage: (msg) => {
          if (m.incarnation === incarnation) this.onMessage(m, msg);
        },
        onExit: (code, signal) => {
          if (m.incarnation === incarnation) this.onExit(m, code, signal);
        },
      });
    } catch (err) {
      m.state = "failed";
      this.fail(
        new WindowingError(
          "WINDOWING_WORKER_FAILED",
          `member ${m.index} could not be started: ${(err as Error)?.message ?? err}`,
          { cause: err },
        ),
      );
      m.markExited();
      return;
    }
    m.handle = handle;
    this.emit({ event: "spawn", member: m.index, pid: handle.pid, incarnation });
    m.timer = this.clock.setTimeout(() => {
      m.timer = undefined;
      if (m.state !== "starting" || m.incarnation !== incarnation) return;
      m.reason = `not ready within ${this.opts.startTimeoutMs} ms`;
      this.emit({
        event: "kill",
        member: m.index,
        pid: handle.pid,
        incarnation,
        reason: m.reason,
      });
      handle.kill();
    }, this.opts.startTimeoutMs);
  }

  private onMessage(m: Member, msg: MemberMessage): void {
    switch (msg.type) {
      case "ready": {
        if (m.state !== "starting") return;
        if (m.timer !== undefined) this.clock.clearTimeout(m.timer);
        m.timer = undefined;
        m.state = "ready";
        m.jobStatus = "open";
        m.readyAt = this.clock.now();
        this.emit({
          event: "ready",
          member: m.index,
          pid: m.handle?.pid,
          incarnation: m.incarnation,
        });
        if (!this.everOpen && this.members.every((x) => x.state === "ready")) {
          this.everOpen = true;
          this.startup.resolve();
        }
        return;
      }
      case "progress":
        m.jobStatus = msg.jobStatus;
        m.records = msg.records;
        return;
      case "fatal":
        m.fatal = true;
        m.reason = describeWireError(msg.error);
        return;
      case "error":
        m.reason = describeWireError(msg.error);
        return;
      case "stopping":
        if (m.state === "ready" || m.state === "starting") m.state = "stopping";
        m.jobStatus = "closing";
        return;
      case "stopped":
        m.jobStatus = "closed";
        return;
    }
  }

  private onExit(m: Member, code: number | null, signal: string | null): void {
    if (m.timer !== undefined) this.clock.clearTimeout(m.timer);
    if (m.killTimer !== undefined) this.clock.clearTimeout(m.killTimer);
    m.timer = undefined;
    m.killTimer = undefined;
    const pid = m.handle?.pid;
    const tail = m.handle?.output?.().trim();
    m.handle = undefined;
    m.jobStatus = "closed";
    const planned = m.stopRequested || this.stopping !== undefined || this.failure !== undefined;
    const reason =
      m.reason ??
      (planned && code === 0
        ? undefined
        : `${signal ? `killed by ${signal}` : `exited with code ${code}`}${tail ? `; stderr: ${tail}` : ""}`);
    m.lastExit = { code, signal, at: this.clock.now(), ...(reason ? { reason } : {}) };
    this.emit({
      event: "exit",
      member: m.index,
      pid,
      incarnation: m.incarnation,
      code,
      signal,
      ...(reason ? { reason } : {}),
    });
    if (planned) {
      m.state = "stopped";
      m.markExited();
      return;
    }
    // A crash.
    if (m.fatal) {
      m.state = "failed";
      m.markExited();
      this.fail(
        new WindowingError("WINDOWING_WORKER_FAILED", `member ${m.index} failed: ${reason}`),
      );
      return;
    }
    if (m.readyAt !== undefined && this.clock.now() - m.readyAt >= this.opts.restart.resetAfterMs) {
      m.failures = 0;
    }
    m.failures++;
    if (m.failures > this.opts.restart.maxRestarts) {
      m.state = "failed";
      m.markExited();
      this.fail(
        new WindowingError(
          "WINDOWING_WORKER_RESTARTS_EXHAUSTED",
          `member ${m.index} crashed ${m.failures} times in a row (restart.maxRestarts = ${this.opts.restart.maxRestarts}); last: ${reason}`,
        ),
      );
      return;
    }
    const delayMs = backoffDelay(this.opts.restart, m.failures);
    m.state = "restarting";
    m.markExited();
    this.emit({
      event: "restart",
      member: m.index,
      incarnation: m.incarnation + 1,
      delayMs,
      ...(reason ? { reason } : {}),
    });
    m.timer = this.clock.setTimeout(() => {
      m.timer = undefined;
      if (this.stopping || this.failure || m.state !== "restarting") return;
      m.incarnation++;
      m.restarts++;
      this.spawn(m);
    }, delayMs);
  }

  private fail(err: WindowingError): void {
    if (this.failure) return;
    this.failure = err;
    this.emit({ event: "failed", reason: err.message, code: err.code });
    this.startup.reject(err);
    void this.drain().then(() => this.finished.reject(err));
  }

  /** Drains every member (graceful stop, SIGKILL after stopTimeoutMs). Idempotent. */
  stop(): Promise<void> {
    if (!this.started) {
      this.started = true;
      this.closed = true;
      this.finished.resolve();
      return Promise.resolve();
    }
    if (this.stopping) return this.stopping;
    const drained = this.drain();
    this.startup.reject(
      new WindowingError("WINDOWING_JOB_CLOSED", "the workers were stopped while starting"),
    );
    this.stopping = drained.then(() => {
      this.closed = true;
      if (this.failure) this.finished.reject(this.failure);
      else this.finished.resolve();
    });
    return this.stopping;
  }

  private drainPromise: Promise<void> | undefined;

  private drain(): Promise<void> {
    if (this.drainPromise) return this.drainPromise;
    this.emit({ event: "stop" });
    for (const m of this.members) {
      if (m.state === "restarting") {
        if (m.timer !== undefined) this.clock.clearTimeout(m.timer);
        m.timer = undefined;
        m.state = "stopped";
        continue;
      }
      const handle = m.handle;
      if (!handle) continue;
      m.stopRequested = true;
      if (m.state !== "failed") m.state = "stopping";
      handle.stop();
      m.killTimer = this.clock.setTimeout(() => {
        m.killTimer = undefined;
        if (m.handle !== handle) return;
        m.reason = `did not drain within ${this.opts.stopTimeoutMs} ms`;
        this.emit({
          event: "kill",
          member: m.index,
          pid: handle.pid,
          incarnation: m.incarnation,
          reason: m.reason,
        });
        handle.kill();
      }, this.opts.stopTimeoutMs);
    }
    this.drainPromise = Promise.all(this.members.map((m) => m.exited)).then(() => {});
    return this.drainPromise;
  }
}
