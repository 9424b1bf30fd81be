// A source partition holding an aborted transaction larger than several
// fetches (kafkajs fetches at most 1 MB per partition) must not stall the job.
// Such fetches hold only aborted records and control markers, so kafkajs never
// hands them to eachBatch; the job has to move its position past them itself.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  count,
  createJob,
  createTestDriver,
  defineJob,
  sum,
  tumbling,
  type WindowResult,
} from "../src/index.js";
import { brokerFixture, createTopic, produce, readAll, uniqueName } from "./kafka-helpers.js";

type Ev = { user: string; amount: number; ts: number };
const schema = {
  decode: (bytes: Buffer): Ev => JSON.parse(bytes.toString("utf8")) as Ev,
};

const fx = brokerFixture();

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** Writes `megabytes` MB of records to one partition in a transaction, then aborts it. */
async function abortedTransaction(topic: string, partition: number, megabytes: number) {
  const producer = fx.kafka.producer({
    transactionalId: uniqueName("gap-tx"),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    const tx = await producer.transaction();
    const value = "x".repeat(1000);
    for (let i = 0; i < megabytes * 10; i++) {
      await tx.send({
        topic,
        messages: Array.from({ length: 100 }, () => ({ key: "aborted", value, partition })),
      });
    }
    await tx.abort();
  } finally {
    await producer.disconnect();
  }
}

describe("a source with an aborted transaction larger than a fetch", () => {
  it("is read past by exactly-once and at-least-once jobs, whose output equals the oracle", async () => {
    const base = uniqueName("wgap");
    fx.prefixes.push(base);
    const source = `${base}-events`;
    await createTopic(fx.admin, source, 2);
    const ev = (i: number, partition: number) => ({
      ev: { user: `u${i % 5}`, amount: (i % 3) + 1, ts: 1_000 * i },
      partition,
    });
    // partition 0: committed records, then the gap, then committed records;
    // partition 1: the gap first (nothing read before it), then records
    const before = Array.from({ length: 40 }, (_, i) => ev(i, 0));
    const after = [
      ...Array.from({ length: 40 }, (_, i) => ev(200 + i, 0)),
      ...Array.from({ length: 40 }, (_, i) => ev(400 + i, 1)),
    ];
    const end = [0, 1].map((p) => ({
      ev: { user: `end${p}`, amount: 0, ts: 10_000_000 },
      partition: p,
    }));
    const toMessage = ({ ev: e, partition }: { ev: Ev; partition: number }) => ({
      key: e.user,
      value: JSON.stringify(e),
      partition,
    });
    await produce(fx.kafka, source, before.map(toMessage));
    await abortedTransaction(source, 0, 3.2);
    await abortedTransaction(source, 1, 2.2);
    await produce(fx.kafka, source, [...after, ...end].map(toMessage));

    const driver = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } })
        .window(tumbling({ size: "1m" }))
        .aggregate({ n: count(), total: sum((e: Ev) => e.amount) }),
      { partitions: 2 },
    );
    for (const { ev: e, partition } of [...before, ...after])
      driver.pipe(e, { key: e.user, partition, timestamp: e.ts });
    driver.advanceStreamTime(10_000_000);
    const expected = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
    expect(expected.length).toBeGreaterThan(10);

    for (const guarantee of ["exactly-once", "at-least-once"] as const) {
      const applicationId = `${base}-${guarantee === "exactly-once" ? "eos" : "alo"}`;
      const output = `${applicationId}-out`;
      const stateDir = mkdtempSync(path.join(tmpdir(), "wgap-"));
      fx.dirs.push(stateDir);
      const job = createJob<Ev>({
        kafka: fx.kafka,
        applicationId,
        source: { topic: source, schema, eventTime: "ts" },
        stateDir,
        guarantee,
        commitIntervalMs: 200,
        handleSignals: false,
      })
        .window(tumbling({ size: "1m" }))
        .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
        .to({ topic: output });
      let got: string[] = [];
      await job.start();
      try {
        // Without moving past the gap the job seeks back to it forever and
        // emits nothing: the output never reaches the oracle's size.
        await waitFor(async () => {
          const rows = await readAll(fx.kafka, fx.admin, output);
          got = rows.map((r) => {
            const w = JSON.parse(r.value as string) as WindowResult<unknown>;
            return `${w.id}=${JSON.stringify(w.value)}`;
          });
          return got.length >= expected.length;
        }, 45_000);
      } finally {
        await job.stop();
        await fx.admin.deleteGroups([applicationId]).catch(() => {});
      }
      expect(got.sort(), guarantee).toEqual(expected);
    }
  }, 180_000);
});
