import path from "node:path";
import { type Sink, SinkError } from "@sluice/sinks";
import { replacePreviousMember } from "@sluice/windowing";
import type { Consumer, Kafka } from "kafkajs";
import type { UserEvent } from "../generator/user-event.js";
import type { PipelineConfig } from "../pipeline/config.js";
import { isEndOfStream } from "../pipeline/end-of-stream.js";
import { UserEventCodec } from "../pipeline/user-event-codec.js";

/** A running raw-events consumer. */
export interface RawEventsConsumer {
  /**
   * Set once the sink failed for good (a `SinkError`: it rejects every later
   * write): this consumer makes no progress any more, and its owner replaces
   * it and the sink, as a job that stopped by itself is restarted.
   */
  readonly failure: Error | undefined;
  stop(): Promise<void>;
}

/**
 * Copies every valid event (late ones included) of the source topic into a
 * sink — the ClickHouse `events` table. At least once: a batch's offsets are
 * committed only after the sink acknowledged it, and the table dedupes on
 * `event_id`. Invalid records are skipped here; the jobs dead-letter them.
 *
 * @param opts - deployment, kafkajs client and the sink
 * @returns a handle to stop it (the sink is not closed)
 */
export async function startRawEventsConsumer(opts: {
  config: PipelineConfig;
  kafka: Kafka;
  sink: Sink<UserEvent>;
}): Promise<RawEventsConsumer> {
  const { config, kafka, sink } = opts;
  let consumer: Consumer | undefined;
  let stopped = false;
  let failure: Error | undefined;
  const run = async (): Promise<void> => {
    const current = kafka.consumer({
      groupId: config.applications.raw,
      readUncommitted: false,
      sessionTimeout: 30_000,
    });
    consumer = current;
    // kafkajs restarts itself after retriable errors; after the others, start over.
    current.on(current.events.CRASH, (e) => {
      if (e.payload.restart || stopped) return;
      setTimeout(() => {
        if (stopped || consumer !== current) return;
        void current
          .disconnect()
          .catch(() => undefined)
          .then(() => (stopped ? undefined : run()))
          .catch(() => undefined);
      }, 1000);
    });
    await current.connect();
    // A previous process on this state directory, killed without leaving the
    // group, would hold the join below until its 30 s session times out.
    await replacePreviousMember(kafka, current, {
      dir: path.join(config.stateDir, config.applications.raw),
      groupId: config.applications.raw,
    });
    await current.subscribe({ topic: config.topic, fromBeginning: true });
    await current.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const events: UserEvent[] = [];
        for (const m of batch.messages) {
          if (!m.value) continue;
          try {
            const e = UserEventCodec.decode(m.value);
            if (!isEndOfStream(e)) events.push(e);
          } catch {
            // Invalid: the jobs' dead-letter topics carry it.
          }
        }
        if (events.length > 0) {
          try {
            await sink.write(events);
            await sink.flush();
          } catch (err) {
            if (SinkError.isInstance(err)) failure ??= err;
            throw err;
          }
        }
        // Advance the fetch position, then commit: the sink has acknowledged.
        resolveOffset(batch.lastOffset());
        await current.commitOffsets([
          {
            topic: batch.topic,
            partition: batch.partition,
            offset: (BigInt(batch.lastOffset()) + 1n).toString(),
          },
        ]);
        await heartbeat();
      },
    });
  };
  await run();
  return {
    get failure() {
      return failure;
    },
    async stop() {
      stopped = true;
      await consumer?.disconnect();
    },
  };
}
