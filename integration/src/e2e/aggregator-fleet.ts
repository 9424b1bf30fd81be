import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { PipelineConfig } from "../pipeline/config.js";
import { type AggregatorProcess, startAggregatorProcess } from "./aggregator-process.js";
import { exited, sleep } from "./processes.js";

/** Something that happened to an aggregator instance, for the fault report. */
export interface FleetEvent {
  atMs: number;
  slot: number;
  what: string;
}

interface Slot {
  index: number;
  stateDir: string;
  /** Whether the slot should run (scaled in). */
  wanted: boolean;
  proc?: AggregatorProcess;
  /** Set while the harness itself stops or kills the process. */
  planned: boolean;
  /** Processes started so far. */
  starts?: number;
  /** Start in progress (first start or restart). */
  starting?: Promise<void>;
  /** Processes spawned so far (names their log files). */
  spawned: number;
}

/**
 * The aggregator deployment as a StatefulSet would run it: numbered instances
 * (slots), each with its own state directory kept across restarts, scaled up
 * and down, and restarted whenever an instance exits without being asked to
 * (as a pod's restart policy would). Every event is logged for the report.
 */
export class AggregatorFleet {
  readonly events: FleetEvent[] = [];
  readonly pids: number[] = [];
  private readonly slots: Slot[] = [];
  private closed = false;

  /**
   * @param opts - the deployment, a directory for the instances' state, the
   *   start of the run's clock, how long one start may take
   */
  constructor(
    private readonly opts: {
      config: PipelineConfig;
      dir: string;
      t0: number;
      /**
       * How long one process may take to print `ready`: its jobs join their
       * groups (waiting out a killed member's session) and restore state,
       * minutes on a loaded 2-core machine. @defaultValue 6 minutes
       */
      readyTimeoutMs?: number;
      /** Called with every event as it happens (progress output). */
      onEvent?: (e: FleetEvent) => void;
      /** Give up restarting an instance after this long. @defaultValue 8 minutes */
      restartForMs?: number;
      /**
       * Start every process of an instance on a new, empty state directory
       * (a pod without a persistent volume) instead of keeping it across
       * restarts (a StatefulSet's volume). @defaultValue false
       */
      freshState?: boolean;
      /**
       * Where each process writes its output and trace
       * (`aggregator-<slot>-<n>.log`, `.trace.jsonl`). @defaultValue none
       */
      logDir?: string;
    },
  ) {}

  private log(slot: number, what: string): void {
    const e = { atMs: Date.now() - this.opts.t0, slot, what };
    this.events.push(e);
    this.opts.onEvent?.(e);
  }

  /** Slots with a live process. */
  get running(): number[] {
    return this.slots.filter((s) => s.proc && s.proc.child.exitCode === null).map((s) => s.index);
  }

  /** Unplanned exits so far (an instance that stopped by itself). */
  get unplannedExits(): FleetEvent[] {
    return this.events.filter((e) => e.what.startsWith("exited by itself"));
  }

  private slot(i: number): Slot {
    while (this.slots.length <= i) {
      const index = this.slots.length;
      this.slots.push({
        index,
        stateDir: path.join(this.opts.dir, `aggregator-${index}`),
        wanted: false,
        planned: false,
        spawned: 0,
      });
    }
    return this.slots[i]!;
  }

  private start(s: Slot): Promise<void> {
    s.starting ??= (async () => {
      const giveUpAt = Date.now() + (this.opts.restartForMs ?? 480_000);
      if (this.opts.freshState) {
        s.starts = (s.starts ?? 0) + 1;
        s.stateDir = path.join(this.opts.dir, `aggregator-${s.index}-${s.starts}`);
      }
      await mkdir(s.stateDir, { recursive: true });
      for (let attempt = 1; ; attempt++) {
        if (this.closed || !s.wanted) return;
        try {
          const proc = await startAggregatorProcess({
            config: this.opts.config,
            stateDir: s.stateDir,
            readyTimeoutMs: this.opts.readyTimeoutMs ?? 360_000,
            ...(this.opts.logDir
              ? { logDir: this.opts.logDir, logName: `aggregator-${s.index}-${++s.spawned}` }
              : {}),
          });
          if (proc.child.pid) this.pids.push(proc.child.pid);
          if (this.closed || !s.wanted) {
            // Scaled in or shut down while it was starting.
            proc.child.kill("SIGKILL");
            await exited(proc.child);
            return;
          }
          s.proc = proc;
          s.planned = false;
          this.log(s.index, `ready (pid ${proc.child.pid})`);
          proc.child.once("exit", (code, signal) => {
            if (s.planned || this.closed) return;
            const tail = proc.stderrTail().trim().split("\n").slice(-2).join(" | ");
            this.log(s.index, `exited by itself (${code ?? signal}): ${tail}`);
            s.proc = undefined;
            if (s.wanted) void this.start(s);
          });
          return;
        } catch (err) {
          const first = (err as Error).message.split("\n").slice(0, 3).join(" | ");
          this.log(s.index, `start attempt ${attempt} failed: ${first}`);
          if (Date.now() > giveUpAt) throw err;
          await sleep(Math.min(1000 * attempt, 5000));
        }
      }
    })().finally(() => {
      s.starting = undefined;
    });
    return s.starting;
  }

  /** Waits until every wanted instance runs (after restarts in progress). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = this.slots.filter((s) => s.starting);
      if (pending.length === 0) return;
      await Promise.all(pending.map((s) => s.starting));
    }
  }

  /**
   * Scales to `n` instances: starts the missing ones (resolves once they are
   * ready), stops the surplus ones gracefully (SIGTERM; they drain and commit).
   *
   * @param n - instances wanted
   * @returns exit codes of the instances stopped
   */
  async scaleTo(n: number): Promise<Array<number | null>> {
    const codes: Array<number | null> = [];
    for (let i = 0; i < Math.max(n, this.slots.length); i++) {
      const s = this.slot(i);
      if (i < n) {
        s.wanted = true;
        if (!s.proc) await this.start(s);
      } else if (s.wanted) {
        s.wanted = false;
        await s.starting?.catch(() => undefined);
        codes.push(await this.stopSlot(s, "SIGTERM"));
      }
    }
    return codes;
  }

  private async stopSlot(s: Slot, signal: "SIGTERM" | "SIGKILL"): Promise<number | null> {
    const proc = s.proc;
    if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return null;
    s.planned = true;
    proc.child.kill(signal);
    const code = await exited(proc.child);
    s.proc = undefined;
    this.log(
      s.index,
      `${signal === "SIGKILL" ? "killed (SIGKILL)" : "stopped (SIGTERM)"}, exit ${code ?? proc.child.signalCode}`,
    );
    return code;
  }

  /**
   * SIGKILLs instance `slot`, then starts it again on the same state
   * directory; resolves once it is ready.
   *
   * @param slot - the instance
   */
  async kill(slot: number): Promise<void> {
    const s = this.slot(slot);
    await s.starting?.catch(() => undefined);
    await this.stopSlot(s, "SIGKILL");
    if (s.wanted) await this.start(s);
  }

  /**
   * Whether every running instance answers `/readyz` with 200 (its jobs have
   * their partitions and restored state) and every wanted one runs.
   */
  async ready(): Promise<boolean> {
    for (const s of this.slots) {
      if (!s.wanted) continue;
      if (!s.proc || s.starting) return false;
      const url = s.proc.metricsUrl.replace(/\/metrics$/, "/readyz");
      const ok = await fetch(url, { signal: AbortSignal.timeout(5000) })
        .then((r) => r.status === 200)
        .catch(() => false);
      if (!ok) return false;
    }
    return true;
  }

  /**
   * Stops every instance gracefully (SIGTERM), no restarts after.
   *
   * @returns each instance's exit code
   */
  async stopAll(): Promise<Array<number | null>> {
    for (const s of this.slots) s.wanted = false;
    await this.settled().catch(() => undefined);
    const codes: Array<number | null> = [];
    for (const s of this.slots) if (s.proc) codes.push(await this.stopSlot(s, "SIGTERM"));
    this.closed = true;
    return codes;
  }

  /** Kills every instance at once (SIGKILL) and waits for the exits; for clean-up after a failure. */
  async killAll(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) s.wanted = false;
    await Promise.all(this.slots.map((s) => this.stopSlot(s, "SIGKILL")));
  }
}
