import { Redis } from "ioredis";
import type { PageWindowTruth } from "../generator/ground-truth.js";
import { type PipelineConfig, redisKeys } from "../pipeline/config.js";
import type { Invariant } from "./report.js";

/** One leaderboard update as the top-pages job publishes it. */
export interface TopPagesMessage {
  windowStart: number;
  windowEnd: number;
  page: string;
  views: number;
}

/** A live subscription to the top-pages channel. */
export interface TopPagesSubscriber {
  /** Well-formed messages, in arrival order. */
  readonly messages: TopPagesMessage[];
  /** Payloads that are not a well-formed update. */
  readonly malformed: string[];
  close(): Promise<void>;
}

function parse(payload: string): TopPagesMessage | undefined {
  try {
    const m = JSON.parse(payload) as Record<string, unknown>;
    const keys = Object.keys(m).sort().join(",");
    if (keys !== "page,views,windowEnd,windowStart") return undefined;
    const { windowStart, windowEnd, page, views } = m;
    if (
      !Number.isSafeInteger(windowStart) ||
      !Number.isSafeInteger(windowEnd) ||
      !Number.isSafeInteger(views) ||
      typeof page !== "string"
    )
      return undefined;
    return m as unknown as TopPagesMessage;
  } catch {
    return undefined;
  }
}

/**
 * Subscribes to the deployment's top-pages channel and keeps every message.
 * The connection comes back (and resubscribes) by itself after a Redis restart.
 *
 * @param c - the deployment
 * @returns the subscriber, once subscribed
 */
export async function subscribeTopPages(c: PipelineConfig): Promise<TopPagesSubscriber> {
  const redis = new Redis(c.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy: () => 100,
  });
  redis.on("error", () => undefined);
  const messages: TopPagesMessage[] = [];
  const malformed: string[] = [];
  redis.on("message", (_channel: string, payload: string) => {
    const m = parse(payload);
    if (m) messages.push(m);
    else malformed.push(payload);
  });
  await redis.connect();
  await redis.subscribe(redisKeys.topPagesChannel(c));
  return {
    messages,
    malformed,
    async close() {
      redis.disconnect();
    },
  };
}

/**
 * Checks the received leaderboard updates against the ground truth: each is
 * well formed and equals a (window, page, views) of the truth; none arrives
 * twice; with `complete`, every window and page of the truth arrived.
 *
 * @param truth - the truth's page windows
 * @param sub - what the subscriber received
 * @param opts - whether every update must have arrived
 * @returns one invariant per rule
 */
export function checkTopPagesMessages(
  truth: readonly PageWindowTruth[],
  sub: Pick<TopPagesSubscriber, "messages" | "malformed">,
  opts: { complete: boolean },
): Invariant[] {
  const key = (w: number, e: number, p: string, v: number) => JSON.stringify([w, e, p, v]);
  const want = new Set(truth.map((t) => key(t.window_start, t.window_end, t.page, t.count)));
  const seen = new Map<string, number>();
  for (const m of sub.messages) {
    const k = key(m.windowStart, m.windowEnd, m.page, m.views);
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const wrong = [...seen.keys()].filter((k) => !want.has(k));
  const twice = [...seen.entries()].filter(([, n]) => n > 1);
  const missing = [...want].filter((k) => !seen.has(k));
  const checks: Invariant[] = [
    {
      name: "pub/sub top-pages: malformed payloads",
      expected: 0,
      actual: sub.malformed.length,
      ok: sub.malformed.length === 0,
      detail: sub.malformed.slice(0, 3).join("\n"),
    },
    {
      name: "pub/sub top-pages: updates not in the ground truth",
      expected: 0,
      actual: wrong.length,
      ok: wrong.length === 0,
      detail: wrong.slice(0, 3).join("\n"),
    },
    {
      name: "pub/sub top-pages: updates received more than once",
      expected: 0,
      actual: twice.length,
      ok: twice.length === 0,
      detail: twice
        .slice(0, 3)
        .map(([k, n]) => `${k} x${n}`)
        .join("\n"),
    },
  ];
  checks.push({
    name: opts.complete
      ? "pub/sub top-pages: every window and page announced"
      : "pub/sub top-pages: distinct updates received (informational under a Redis outage)",
    expected: want.size,
    actual: seen.size - wrong.length,
    ok: !opts.complete || missing.length === 0,
    detail: missing.slice(0, 3).join("\n"),
  });
  return checks;
}
