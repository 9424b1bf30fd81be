// The input and oracle shared by the broker tests that run the crash-job
// fixture's tumbling job (crash, rebalance, workers): users spread over the
// partitions by user, event time mostly increasing with some disorder, and
// one far-future event per partition that closes every window; the oracle is
// the TestDriver running the same definition as the fixture. produceInChunks
// also feeds the session crash test.
import type { Kafka, Message } from "kafkajs";
import { count, createTestDriver, defineJob, sum, tumbling } from "../src/index.js";
import { sleep } from "./crash-harness.js";
import { produce } from "./kafka-helpers.js";

export type Ev = { user: string; amount: number; ts: number };

/** An event and the source partition it is written to. */
export interface Placed<E = Ev> {
  ev: E;
  partition: number;
}

/** `total` events of `users` users (user u on partition u % partitions), then one closing event per partition. */
export function tumblingEvents(total: number, users: number, partitions: number): Placed[] {
  const msgs: Placed[] = [];
  for (let i = 0; i < total; i++) {
    const u = (i * 7919) % users;
    msgs.push({
      ev: { user: `u${u}`, amount: (i % 5) + 1, ts: i * 5 + ((i * 31) % 150) },
      partition: u % partitions,
    });
  }
  for (let p = 0; p < partitions; p++)
    msgs.push({ ev: { user: `end${p}`, amount: 0, ts: total * 5 + 100_000 }, partition: p });
  return msgs;
}

/**
 * What the fixture's job (tumbling 1 s, grace 200 ms, count + sum, emit
 * update) emits for these events, as sorted `id=value` strings.
 */
export function tumblingOracle(msgs: readonly Placed[], partitions: number): string[] {
  const driver = createTestDriver(
    defineJob<Ev>({ source: { eventTime: "ts" } })
      .window(tumbling({ size: 1000, grace: 200 }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .emit("update"),
    { partitions },
  );
  for (const { ev, partition } of msgs)
    driver.pipe(ev, { key: ev.user, partition, timestamp: ev.ts });
  return driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
}

/** Kafka messages of placed events, keyed by user. */
export function toMessages<E extends { user: string }>(part: readonly Placed<E>[]): Message[] {
  return part.map(({ ev, partition }) => ({ key: ev.user, value: JSON.stringify(ev), partition }));
}

/** Produces the events in `chunks` parts with `pauseMs` between them (while a job runs). */
export async function produceInChunks<E extends { user: string }>(
  kafka: Kafka,
  topic: string,
  msgs: readonly Placed<E>[],
  chunks: number,
  pauseMs: number,
): Promise<void> {
  const size = Math.ceil(msgs.length / chunks);
  for (let c = 0; c < chunks; c++) {
    await produce(kafka, topic, toMessages(msgs.slice(c * size, (c + 1) * size)));
    await sleep(pauseMs);
  }
}
