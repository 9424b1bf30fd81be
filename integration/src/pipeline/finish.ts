import { createProducer } from "@sluice/producer";
import type { Kafka } from "kafkajs";
import type { GeneratedRecord } from "../generator/generate.js";
import type { UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "./config.js";
import { endOfStreamEvents } from "./end-of-stream.js";
import { type GroupLag, waitForCatchUp } from "./progress.js";
import { UserEventCodec } from "./user-event-codec.js";

/**
 * Runs a bounded stream to completion once everything was produced: waits
 * until every job and the raw consumer have consumed and committed all of it,
 * sends the end-of-stream markers (so every window closes and is emitted),
 * and waits again until those are processed and committed — by then every
 * result is acknowledged by its sink (sinks flush before offsets commit).
 *
 * @param opts - deployment, kafkajs client, the produced records, timeout and progress callback
 */
export async function finishStream(opts: {
  config: PipelineConfig;
  kafka: Kafka;
  records: readonly GeneratedRecord[];
  timeoutMs: number;
  onPoll?: (lags: GroupLag[]) => void;
  onMarkers?: (count: number) => void;
}): Promise<void> {
  const { config: c, kafka } = opts;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groups = Object.values(c.applications);
    const deadline = Date.now() + opts.timeoutMs;
    const wait = () =>
      waitForCatchUp(admin, groups, [c.topic], {
        timeoutMs: Math.max(1000, deadline - Date.now()),
        onPoll: opts.onPoll,
        kafka,
      });
    await wait();
    let maxTs = 0;
    const pages = new Set<string>();
    for (const r of opts.records) {
      if (!r.event) continue;
      if (r.event.ts > maxTs) maxTs = r.event.ts;
      pages.add(r.event.page);
    }
    const at = maxTs + c.repartitionGraceMs + c.windows.sessionGapMs + 3_600_000;
    const markers = endOfStreamEvents(c, [...pages].sort(), at);
    opts.onMarkers?.(markers.length);
    const producer = createProducer<UserEvent>({ kafka, topic: c.topic, schema: UserEventCodec });
    try {
      await Promise.all(markers.map((m) => producer.send(m)));
    } finally {
      await producer.close();
    }
    await wait();
  } finally {
    await admin.disconnect();
  }
}
