import { createRedisSink, type RedisSink } from "@sluice/sinks";
import type { WindowResult } from "@sluice/windowing";
import { type PipelineConfig, redisKeys } from "../pipeline/config.js";

type Result = WindowResult<number>;

/** The aggregator's Redis outputs: live counters, leaderboards and their pub/sub announcements. */
export interface RedisOutputs {
  /** Job 2 target: `HSET counts:<minute> <type> <count>`. */
  minuteCounts: () => RedisSink<Result>;
  /** Job 3 target: `ZADD top-pages:<window> <views> <page>` and `PUBLISH top-pages <json>`. */
  topPages: () => RedisSink<Result>;
}

/**
 * Redis sinks (`@sluice/sinks`) of the windowing jobs. Every result is fenced
 * by its identity in the sink, and the writes set final values, so replays
 * after a crash change nothing.
 *
 * @param c - the deployment (address, key prefix)
 * @returns a factory for each sink (a restarted job gets fresh ones)
 */
export function createRedisOutputs(c: PipelineConfig): RedisOutputs {
  const relative = (key: string) => key.slice(c.redisPrefix.length);
  const common = { url: c.redisUrl, keyPrefix: c.redisPrefix, maxDelayMs: 100 };
  return {
    minuteCounts: () =>
      createRedisSink<Result>({
        ...common,
        name: "live-counters",
        jobId: c.applications.counts,
        write: (r) => [
          {
            command: "HSET",
            key: relative(redisKeys.minuteCounts(c, r.windowStart)),
            args: [r.key, r.value],
          },
        ],
      }),
    topPages: () =>
      createRedisSink<Result>({
        ...common,
        name: "top-pages",
        jobId: c.applications.pages,
        write: (r) => [
          {
            command: "ZADD",
            key: relative(redisKeys.topPages(c, r.windowStart)),
            args: [r.value, r.key],
          },
          {
            command: "PUBLISH",
            key: relative(redisKeys.topPagesChannel(c)),
            args: [
              JSON.stringify({
                windowStart: r.windowStart,
                windowEnd: r.windowEnd,
                page: r.key,
                views: r.value,
              }),
            ],
          },
        ],
      }),
  };
}
