import { type Duration, parseDuration } from "@sluice/schema";
import { channels } from "./channels.js";
import type { HealthCheck } from "./health-check.js";
import { subscribeAll } from "./internal/subscribe.js";
import { ObservabilityError } from "./observability-error.js";

/**
 * Options of {@link createReadiness}.
 *
 * @since 0.1.0
 */
export interface ReadinessOptions {
  /**
   * How long a sink may keep failing (batch errors or retries without a
   * success since) before the process reports not ready.
   * @defaultValue `"30s"`
   */
  sinkFailureThreshold?: Duration;
  /**
   * Whether at least one job must have reported ready. Set `false` in a
   * process that only produces or only writes to sinks.
   * @defaultValue true
   */
  requireJob?: boolean;
  /**
   * Wall clock in epoch ms.
   * @defaultValue `Date.now`
   */
  now?: () => number;
}

/**
 * Readiness derived from the Sluice channels. See {@link createReadiness}.
 *
 * @since 0.1.0
 */
export interface Readiness {
  /** `'open'` until `close()`, then `'closed'`. */
  readonly status: "open" | "closing" | "closed";
  /**
   * Current readiness with the reason in `detail`.
   * @returns `{ ok, detail: { jobs, sinks, reasons } }`
   * @throws ObservabilityError `OBSERVABILITY_READINESS_CLOSED` after `close()`
   */
  check(): HealthCheck;
  /** Unsubscribes. Idempotent. */
  close(): Promise<void>;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

interface JobState {
  ready: boolean;
  partitions: Set<number>;
}

/**
 * Tracks readiness from `sluice:job:ready`, `sluice:job:rebalance`,
 * `sluice:sink:batch` and `sluice:sink:retry`:
 *
 * - a job is ready after it publishes `ready: true`; a rebalance that moves
 *   partitions makes it not ready until it publishes `ready: true` again;
 * - a sink is failing from its first failed batch (or retry) until its next
 *   successful batch; failing longer than `sinkFailureThreshold` makes the
 *   process not ready.
 *
 * The process is ready when every job seen is ready (and at least one was
 * seen, unless `requireJob: false`) and no sink fails beyond the threshold.
 *
 * @param options - {@link ReadinessOptions}
 * @returns a {@link Readiness} to pass to {@link startObservabilityServer}
 * @throws ObservabilityError `OBSERVABILITY_INVALID_OPTIONS` for a bad option
 * @example
 * ```ts
 * const readiness = createReadiness({ sinkFailureThreshold: "1m" });
 * const server = await startObservabilityServer({ port: 9464, registry, readiness });
 * ```
 * @since 0.1.0
 */
export function createReadiness(options: ReadinessOptions = {}): Readiness {
  if (typeof options !== "object" || options === null) {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      "createReadiness: options must be an object",
    );
  }
  let thresholdMs: number;
  try {
    thresholdMs = parseDuration(options.sinkFailureThreshold ?? "30s", "sinkFailureThreshold");
  } catch (err) {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      `createReadiness: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const requireJob = options.requireJob ?? true;
  if (typeof requireJob !== "boolean") {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      `createReadiness: requireJob must be a boolean; got ${JSON.stringify(requireJob)}`,
    );
  }
  const now = options.now ?? Date.now;
  if (typeof now !== "function") {
    throw new ObservabilityError(
      "OBSERVABILITY_INVALID_OPTIONS",
      "createReadiness: now must be a function",
    );
  }

  const jobs = new Map<string, JobState>();
  const failingSince = new Map<string, number>();
  const job = (id: unknown): JobState | undefined => {
    if (typeof id !== "string" || id.length === 0) return undefined;
    let s = jobs.get(id);
    if (!s) {
      if (jobs.size >= 1000) return undefined;
      s = { ready: false, partitions: new Set() };
      jobs.set(id, s);
    }
    return s;
  };
  const sinkKey = (m: Record<string, unknown>) =>
    typeof m.sink === "string" && typeof m.name === "string" ? `${m.sink}:${m.name}` : undefined;
  const markFailing = (key: string | undefined) => {
    if (key && !failingSince.has(key) && failingSince.size < 1000) failingSince.set(key, now());
  };

  const handlers: Record<string, (m: Record<string, unknown>) => void> = {
    [channels.jobReady]: (m) => {
      const s = job(m.applicationId);
      if (s && typeof m.ready === "boolean") s.ready = m.ready;
    },
    [channels.jobRebalance]: (m) => {
      const s = job(m.applicationId);
      if (!s) return;
      const assigned = Array.isArray(m.assigned) ? (m.assigned as unknown[]) : [];
      const revoked = Array.isArray(m.revoked) ? (m.revoked as unknown[]) : [];
      for (const p of revoked) if (typeof p === "number") s.partitions.delete(p);
      for (const p of assigned) if (typeof p === "number") s.partitions.add(p);
      if (assigned.length > 0 || revoked.length > 0) s.ready = false;
    },
    [channels.sinkBatch]: (m) => {
      const key = sinkKey(m);
      if (!key) return;
      if (m.error !== undefined && m.error !== null && m.error !== false) markFailing(key);
      else failingSince.delete(key);
    },
    [channels.sinkRetry]: (m) => markFailing(sinkKey(m)),
  };
  const unsubscribe = subscribeAll(handlers, () => {});

  let status: "open" | "closing" | "closed" = "open";
  const close = async () => {
    if (status !== "open") return;
    status = "closed";
    unsubscribe();
  };

  return {
    get status() {
      return status;
    },
    check(): HealthCheck {
      if (status !== "open") {
        throw new ObservabilityError(
          "OBSERVABILITY_READINESS_CLOSED",
          "readiness.check() was called after close(); create a new one with createReadiness()",
        );
      }
      const reasons: string[] = [];
      const t = now();
      const jobDetail: Record<string, { ready: boolean; partitions: number[] }> = {};
      for (const [id, s] of jobs) {
        jobDetail[id] = { ready: s.ready, partitions: [...s.partitions].sort((a, b) => a - b) };
        if (!s.ready)
          reasons.push(`job ${id} is not ready (partitions not assigned or state not restored)`);
      }
      if (requireJob && jobs.size === 0) reasons.push("no job has reported ready yet");
      const sinkDetail: Record<string, { failingForMs: number }> = {};
      for (const [key, since] of failingSince) {
        const failingForMs = Math.max(0, t - since);
        sinkDetail[key] = { failingForMs };
        if (failingForMs > thresholdMs) {
          reasons.push(
            `sink ${key} has been failing for ${failingForMs} ms (threshold ${thresholdMs} ms)`,
          );
        }
      }
      return {
        ok: reasons.length === 0,
        detail: { jobs: jobDetail, failingSinks: sinkDetail, reasons },
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
