import type { Random } from "../generator/random.js";
import type { AggregatorFleet } from "./aggregator-fleet.js";
import { sleep } from "./processes.js";

/** The faults of the end-to-end suite. */
export type FaultKind =
  | "kill-aggregator"
  | "restart-broker"
  | "clickhouse-outage"
  | "redis-outage"
  | "scale-up"
  | "scale-down";

/** One fault of a plan: what, and how long to wait before it. */
export interface PlannedFault {
  kind: FaultKind;
  /** Stream phase: wait after the previous fault ends. Finish phase: wait after the end-of-stream markers. */
  delayMs: number;
}

/** Where the faults go: while events stream in, and while the final windows flush. */
export interface FaultPlan {
  /** Run one after another while the events are produced and consumed. */
  stream: PlannedFault[];
  /** Each on its own timer from the end-of-stream markers, when the re-keyed jobs' windows close and flow to Redis. */
  finish: PlannedFault[];
}

/** A fault as it happened. */
export interface InjectedFault {
  kind: FaultKind;
  detail: string;
  /** Since the start of the run. */
  startMs: number;
  endMs: number;
}

function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * A random fault plan: three SIGKILLs of an aggregator instance, one broker
 * restart, one ClickHouse outage, one Redis outage and a 1 → 2 → 1 scaling,
 * in random order at random moments. The broker restart, the ClickHouse
 * outage, the scaling and two kills go to the stream phase; the Redis outage
 * and one kill go to the finish phase, because the re-keyed jobs (12 h of
 * grace) write to Redis only once the end-of-stream markers close their windows.
 *
 * @param random - seeded
 * @returns the plan
 */
export function planFaults(random: Random): FaultPlan {
  const stream = shuffle<FaultKind>(random, [
    "kill-aggregator",
    "kill-aggregator",
    "restart-broker",
    "clickhouse-outage",
    "scale-up",
    "scale-down",
  ]);
  const up = stream.indexOf("scale-up");
  const down = stream.indexOf("scale-down");
  if (down < up) [stream[up], stream[down]] = [stream[down]!, stream[up]!];
  return {
    stream: stream.map((kind, i) => ({
      kind,
      delayMs: i === 0 ? random.int(5_000, 20_000) : random.int(2_000, 12_000),
    })),
    finish: [
      { kind: "redis-outage", delayMs: random.int(0, 4_000) },
      { kind: "kill-aggregator", delayMs: random.int(0, 20_000) },
    ],
  };
}

/** What a fault acts on. */
export interface FaultTargets {
  fleet: AggregatorFleet;
  broker: { stop(): Promise<void>; restart(): Promise<void> };
  clickhouse: { stop(): Promise<void>; restart(): Promise<void> };
  redis: { stop(): Promise<void>; restart(): Promise<void> };
  random: Random;
  /** Start of the run's clock. */
  t0: number;
  /** ClickHouse stays down this long. @defaultValue 15 s */
  clickhouseDownMs?: number;
  /** Redis stays down this long. @defaultValue 10 s */
  redisDownMs?: number;
}

/**
 * Injects one fault and waits until it is over (the service is back, the
 * killed instance restarted and ready).
 *
 * @param kind - the fault
 * @param t - what it acts on
 * @returns what happened, with times since the start of the run
 */
export async function injectFault(kind: FaultKind, t: FaultTargets): Promise<InjectedFault> {
  const startMs = Date.now() - t.t0;
  let detail = "";
  switch (kind) {
    case "kill-aggregator": {
      const running = t.fleet.running;
      const slot = running[t.random.int(0, Math.max(0, running.length - 1))] ?? 0;
      const restartFrom = Date.now();
      await t.fleet.kill(slot);
      detail = `SIGKILL instance ${slot} of ${running.length}; restarted, ready after ${((Date.now() - restartFrom) / 1000).toFixed(1)} s`;
      break;
    }
    case "restart-broker": {
      await t.broker.stop();
      const down = Date.now();
      await t.broker.restart();
      detail = `SIGTERM, start again on the same log dirs; down ${((Date.now() - down) / 1000).toFixed(1)} s`;
      break;
    }
    case "clickhouse-outage": {
      const downMs = t.clickhouseDownMs ?? 15_000;
      await t.clickhouse.stop();
      await sleep(downMs);
      await t.clickhouse.restart();
      detail = `server stopped, down ${downMs / 1000} s, restarted`;
      break;
    }
    case "redis-outage": {
      const downMs = t.redisDownMs ?? 10_000;
      await t.redis.stop();
      await sleep(downMs);
      await t.redis.restart();
      detail = `server stopped, down ${downMs / 1000} s, restarted (AOF kept)`;
      break;
    }
    case "scale-up": {
      await t.fleet.scaleTo(2);
      detail = "1 -> 2 instances (second one ready)";
      break;
    }
    case "scale-down": {
      const codes = await t.fleet.scaleTo(1);
      detail = `2 -> 1 instances (SIGTERM, exit ${codes.join(",")})`;
      if (codes.some((c) => c !== 0)) throw new Error(`scale-down: instance exited with ${codes}`);
      break;
    }
  }
  return { kind, detail, startMs, endMs: Date.now() - t.t0 };
}
