import { createKeyPartitioner } from "../generator/partitioner.js";
import { EVENT_TYPES, type UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "./config.js";

/** User ids of end-of-stream markers start with this; no real user id does. */
export const END_OF_STREAM_USER_PREFIX = "~eos-";

/** Whether an event is an end-of-stream marker. */
export function isEndOfStream(e: Pick<UserEvent, "user_id">): boolean {
  return e.user_id.startsWith(END_OF_STREAM_USER_PREFIX);
}

/**
 * Events that close every window of a bounded run. Windows close on stream
 * time, which only moves with event time, so after the last real event the
 * producer sends, per source partition, per event type and per page, one
 * marker far enough in event time (`at`) to close every real window in every
 * source and repartition partition. The markers open windows of their own
 * that never close (no later event comes), so they never reach a sink; the
 * raw events consumer skips them by their user id.
 *
 * Send them only once the aggregator has consumed every real event, or a
 * marker could overtake real events in a repartition topic and make them late.
 *
 * @param c - the deployment (partitions)
 * @param pages - every page that occurred
 * @param at - event time of the markers
 * @returns the marker events
 */
export function endOfStreamEvents(
  c: PipelineConfig,
  pages: readonly string[],
  at: number,
): UserEvent[] {
  const partitionOf = createKeyPartitioner(c.partitions);
  const users: string[] = [];
  for (let p = 0; p < c.partitions; p++) {
    for (let k = 0; ; k++) {
      const id = `${END_OF_STREAM_USER_PREFIX}${p}-${k}`;
      if (partitionOf(id) === p) {
        users.push(id);
        break;
      }
    }
  }
  const n = Math.max(pages.length, c.partitions, EVENT_TYPES.length);
  return Array.from({ length: n }, (_, i) => {
    const type = EVENT_TYPES[i % EVENT_TYPES.length]!;
    const e: UserEvent = {
      event_id: `eos-${i}`,
      user_id: users[i % users.length]!,
      type,
      page: pages[i % Math.max(1, pages.length)] ?? "/",
      ts: at,
    };
    if (type === "purchase") e.revenue_cents = 0;
    return e;
  });
}
