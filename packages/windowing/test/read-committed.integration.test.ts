// Sluice's read_committed filter on the real broker: several transactional
// producers leave overlapping transactions aborted out of order, around
// committed ones. A Sluice consumer (and a job's changelog restore and source
// read) sees exactly the committed records; a plain kafkajs consumer in the
// same process still sees what kafkajs sees (the wrap is scoped).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Consumer, ConsumerConfig, Kafka, Producer } from "kafkajs";
import { describe, expect, it } from "vitest";
import { count, createJob, createTestDriver, defineJob, sum, tumbling } from "../src/index.js";
import { readChangelog } from "../src/internal/changelog-reader.js";
import { createReadCommittedConsumer, readCommittedInfo } from "../src/internal/read-committed.js";
import type { WindowResult } from "../src/window-result.js";
import { brokerFixture, createTopic, produce, readAll, uniqueName } from "./kafka-helpers.js";

const { kafka, admin, prefixes, dirs } = brokerFixture();

async function transactional(client: Kafka, id: string): Promise<Producer> {
  const p = client.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  return p;
}

interface Written {
  committed: { key: string; value: string }[];
  aborted: Set<string>;
}

/**
 * Writes to partition 0 of `topic`: a committed transaction; then A and B
 * interleaved (10 sends each) while C writes; B aborts, A aborts, C commits;
 * A commits a new transaction; then D and E overlap, E aborts, D commits; last
 * a record without a transaction. Values name their transaction, so an
 * aborted one is recognisable.
 */
async function writeOverlappingAborts(
  topic: string,
  value: (txn: string, i: number) => { key: string; value: string },
): Promise<Written> {
  const committed: { key: string; value: string }[] = [];
  const aborted = new Set<string>();
  const [p0, a, b, c, d, e] = await Promise.all(
    ["0", "a", "b", "c", "d", "e"].map((id) => transactional(kafka, `${topic}-${id}`)),
  );
  const all = [p0, a, b, c, d, e] as Producer[];
  try {
    const send = async (
      t: Awaited<ReturnType<Producer["transaction"]>>,
      txn: string,
      from: number,
      n: number,
      into: "committed" | "aborted",
    ) => {
      const msgs = Array.from({ length: n }, (_, i) => value(txn, from + i));
      await t.send({ topic, messages: msgs.map((m) => ({ ...m, partition: 0 })) });
      for (const m of msgs) {
        if (into === "committed") committed.push(m);
        else aborted.add(m.value);
      }
    };
    const t0 = await (p0 as Producer).transaction();
    await send(t0, "t0", 0, 5, "committed");
    await t0.commit();
    const ta = await (a as Producer).transaction();
    const tb = await (b as Producer).transaction();
    const tc = await (c as Producer).transaction();
    for (let round = 0; round < 10; round++) {
      await send(ta, "A", round * 10, 10, "aborted");
      await send(tb, "B", round * 10, 10, "aborted");
      if (round % 3 === 0) await send(tc, "C", round, 1, "committed");
    }
    await tb.abort();
    await ta.abort();
    await tc.commit();
    // A again, committed this time
    const ta2 = await (a as Producer).transaction();
    await send(ta2, "A2", 0, 3, "committed");
    await ta2.commit();
    const td = await (d as Producer).transaction();
    const te = await (e as Producer).transaction();
    for (let round = 0; round < 4; round++) {
      await send(te, "E", round * 5, 5, "aborted");
      await send(td, "D", round * 5, 5, "committed");
    }
    await te.abort();
    await td.commit();
  } finally {
    await Promise.all(all.map((p) => p.disconnect().catch(() => {})));
  }
  const plain = value("plain", 0);
  await produce(kafka, topic, [{ ...plain, partition: 0 }]);
  committed.push(plain);
  return { committed, aborted };
}

/**
 * A stand-in client for `readAll` whose consumers are Sluice's, made with
 * `extra` config and collected in `made`.
 */
function sluiceReader(made: Consumer[] = [], extra: Partial<ConsumerConfig> = {}): Kafka {
  return {
    consumer: (config: ConsumerConfig) => {
      const consumer = createReadCommittedConsumer(kafka, { ...config, ...extra });
      made.push(consumer);
      return consumer;
    },
  } as unknown as Kafka;
}

describe("Sluice's read_committed filter on the broker", () => {
  it("delivers exactly the committed records; a plain kafkajs consumer alongside is unchanged", async () => {
    const base = uniqueName("rcommit");
    prefixes.push(base);
    const topic = `${base}-log`;
    await createTopic(admin, topic, 1);
    const { committed, aborted } = await writeOverlappingAborts(topic, (txn, i) => ({
      key: `k${i % 7}`,
      value: `${txn}-${i}`,
    }));
    const sluice: Consumer[] = [];
    const small: Consumer[] = [];
    const [viaSluice, viaSmall, viaKafkajs] = await Promise.all([
      readAll(sluiceReader(sluice), admin, topic),
      // small fetches: most begin inside both open aborted transactions
      readAll(sluiceReader(small, { maxBytesPerPartition: 300 }), admin, topic),
      readAll(kafka, admin, topic),
    ]);
    const want = committed.map((m) => m.value);
    expect(viaSluice.map((m) => m.value)).toEqual(want);
    expect(viaSmall.map((m) => m.value)).toEqual(want);
    const info = readCommittedInfo(sluice[0] as Consumer);
    expect(info?.filter).toBe("sluice");
    expect(info?.counts.abortedRecords).toBeGreaterThanOrEqual(aborted.size);
    expect(readCommittedInfo(small[0] as Consumer)?.counts.fetches).toBeGreaterThan(5);
    // kafkajs's own filter, untouched in the same process and client, still
    // lets records of the transactions aborted out of order through
    const leaked = viaKafkajs.filter((m) => aborted.has(m.value as string));
    expect(leaked.length).toBeGreaterThan(0);
    expect(viaKafkajs.filter((m) => !aborted.has(m.value as string)).map((m) => m.value)).toEqual(
      want,
    );
  });

  it("a changelog restore folds only committed changes", async () => {
    const base = uniqueName("rcrestore");
    prefixes.push(base);
    const topic = `${base}-changelog`;
    await createTopic(admin, topic, 1);
    const { committed } = await writeOverlappingAborts(topic, (txn, i) => ({
      key: JSON.stringify(["w", `k${i % 7}`]),
      value: JSON.stringify(`${txn}-${i}`),
    }));
    const latest = new Map<string, string>();
    for (const m of committed) latest.set(m.key, m.value);
    const restored = await readChangelog({
      kafka,
      admin,
      topic,
      partitions: [0],
      timeoutMs: 60_000,
    });
    const entry = restored.get(0);
    expect(entry?.records).toBe(committed.length);
    const got = new Map(
      [...(entry?.fold.entries() ?? [])].map(([k, v]) => [k, v?.toString("utf8") ?? "null"]),
    );
    expect(got).toEqual(latest);
  });

  it("a job reading such a source emits exactly the oracle", async () => {
    const base = uniqueName("rcjob");
    prefixes.push(base);
    const source = `${base}-events`;
    const output = `${base}-out`;
    await createTopic(admin, source, 1);
    type Ev = { user: string; amount: number; ts: number };
    const ev = (txn: string, i: number): Ev => ({
      user: `u${i % 5}`,
      amount: txn === "A" || txn === "B" || txn === "E" ? 1000 : (i % 7) + 1,
      ts: 1_000 * i,
    });
    const { committed } = await writeOverlappingAborts(source, (txn, i) => {
      const e = ev(txn, i);
      return { key: e.user, value: JSON.stringify(e) };
    });
    // a far-future event closes every window
    const end: Ev = { user: "end", amount: 0, ts: 10_000_000 };
    await produce(kafka, source, [{ key: "end", value: JSON.stringify(end), partition: 0 }]);
    const schema = { decode: (b: Buffer) => JSON.parse(b.toString("utf8")) as Ev };
    const driver = createTestDriver(
      defineJob<Ev>({ source: { eventTime: "ts" } })
        .window(tumbling({ size: "10s" }))
        .aggregate({ n: count(), total: sum((e: Ev) => e.amount) }),
      { partitions: 1 },
    );
    for (const m of committed) {
      const e = JSON.parse(m.value) as Ev;
      driver.pipe(e, { key: e.user, partition: 0, timestamp: e.ts });
    }
    driver.advanceStreamTime(end.ts);
    const expected = driver.results.map((r) => `${r.id}=${JSON.stringify(r.value)}`).sort();
    expect(expected.length).toBeGreaterThan(5);

    const stateDir = mkdtempSync(path.join(tmpdir(), "rcjob-"));
    dirs.push(stateDir);
    const job = createJob<Ev>({
      kafka,
      applicationId: base,
      source: { topic: source, schema, eventTime: "ts" },
      stateDir,
      commitIntervalMs: 200,
      handleSignals: false,
    })
      .window(tumbling({ size: "10s" }))
      .aggregate({ n: count(), total: sum((e: Ev) => e.amount) })
      .to({ topic: output });
    await job.start();
    let got: string[] = [];
    try {
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        const rows = await readAll(sluiceReader(), admin, output);
        got = rows.map((r) => {
          const w = JSON.parse(r.value as string) as WindowResult<unknown>;
          return `${w.id}=${JSON.stringify(w.value)}`;
        });
        if (got.length >= expected.length) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await job.stop();
    }
    expect(got.sort()).toEqual(expected);
  });
});
