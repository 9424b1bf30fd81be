import { cpSync } from "node:fs";
import path from "node:path";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ChangelogMutation,
  changelogTopicName,
  createChangelogTopic,
  createKafkaChangelogWriter,
  openStateStore,
  restore,
  StateError,
  type StateStore,
} from "../src/index.js";
import { collect, tempDir } from "./helpers.js";

const brokers = (process.env.SLUICE_KAFKA_BROKERS ?? "127.0.0.1:9092")
  .split(",")
  .map((b) => b.trim());
const kafka = new Kafka({ clientId: "sluice-state-test", brokers, logLevel: logLevel.NOTHING });
const unique = (p: string) =>
  `${p}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

const app = unique("state_it");
const topic = changelogTopicName(app, "counts");
const PARTITION = 1;
let producer: Producer;

beforeAll(async () => {
  expect(await createChangelogTopic({ kafka, topic, numPartitions: 3 })).toBe(true);
  expect(await createChangelogTopic({ kafka, topic, numPartitions: 3 })).toBe(false);
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
});

type Value = { n: number; tag: string };

async function dump(store: StateStore<Value>, partition: number) {
  const p = store.partition(partition);
  const kv = (await collect(p.entries())).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const windows = await collect(p.windowsEndingBefore(Number.MAX_SAFE_INTEGER));
  return { kv, windows };
}

/** One checkpoint's worth of deterministic changes: puts, overwrites, deletes, window moves. */
async function round(store: StateStore<Value>, r: number): Promise<ChangelogMutation[]> {
  const p = store.partition(PARTITION);
  for (let i = 0; i < 1500; i++) {
    const k = `user-${(i * 7 + r * 131) % 2000}`;
    await p.put(k, { n: r * 10_000 + i, tag: "x".repeat(i % 40) });
  }
  for (let i = 0; i < 100; i++) await p.delete(`user-${(r * 97 + i * 13) % 2000}`);
  for (let i = 0; i < 200; i++) {
    const key = `w-${i % 50}`;
    const start = (r + (i % 4)) * 60_000;
    await p.putWindow(key, start, start + 60_000 + (i % 3) * 1000, { n: r, tag: key });
  }
  for (let i = 0; i < 10; i++) await p.deleteWindow(`w-${i}`, r * 60_000);
  // other partitions' state must not leak into this partition's changelog
  await store.partition(0).put("elsewhere", { n: r, tag: "p0" });
  await store.checkpoint({ partition: 0, sourceOffset: r, streamTime: r });
  return store.checkpoint({
    partition: PARTITION,
    sourceOffset: String(1000 + r),
    streamTime: r * 60_000,
  });
}

describe("restore from the changelog on the broker", () => {
  it("rebuilds a deleted local store entry by entry, then replays only the delta after a local checkpoint", async () => {
    const dir = tempDir();
    const writer = createKafkaChangelogWriter({ producer, topic, maxRequestBytes: 64 * 1024 });
    const original = await openStateStore<Value>({ dir, name: "counts", changelog: writer });
    for (let r = 0; r < 3; r++) await round(original, r);
    const cp3 = await original.readCheckpoint(PARTITION);
    expect(cp3?.changelogOffset).toBeDefined();
    await original.close();

    // a copy of the local directory as it was after checkpoint 3 (a machine that fell behind)
    const behind = tempDir();
    cpSync(path.join(dir, "counts"), path.join(behind, "counts"), { recursive: true });

    const again = await openStateStore<Value>({ dir, name: "counts", changelog: writer });
    let produced = 0;
    for (let r = 3; r < 5; r++) produced += (await round(again, r)).length;
    const expected = await dump(again, PARTITION);
    const expectedCp = await again.readCheckpoint(PARTITION);
    await again.close();
    expect(expected.kv.length).toBeGreaterThan(1000);
    expect(expected.windows.length).toBeGreaterThan(100);

    // another machine with no local state: full restore
    const fresh = await openStateStore<Value>({ dir: tempDir(), name: "counts" });
    const full = await restore({ kafka, topic, partition: PARTITION, store: fresh });
    expect(full.mode).toBe("full");
    expect(full.toOffset).toBe(String(expectedCp?.changelogOffset));
    const got = await dump(fresh, PARTITION);
    expect(got.kv.length).toBe(expected.kv.length);
    for (let i = 0; i < expected.kv.length; i++) expect(got.kv[i]).toEqual(expected.kv[i]);
    expect(got.windows).toEqual(expected.windows);
    expect(await fresh.readCheckpoint(PARTITION)).toMatchObject({
      sourceOffset: expectedCp?.sourceOffset,
      streamTime: expectedCp?.streamTime,
      changelogOffset: expectedCp?.changelogOffset,
    });
    // partition 0 was not touched
    expect(await fresh.partition(0).get("elsewhere")).toBeUndefined();
    // restoring again is a no-op
    const none = await restore({ kafka, topic, partition: PARTITION, store: fresh });
    expect(none).toMatchObject({ mode: "none", records: 0 });
    await fresh.close();

    // the machine that fell behind replays only what came after its checkpoint
    const lagging = await openStateStore<Value>({ dir: behind, name: "counts" });
    const delta = await restore({ kafka, topic, partition: PARTITION, store: lagging });
    expect(delta.mode).toBe("delta");
    expect(delta.fromOffset).toBe(String(cp3?.changelogOffset));
    expect(delta.records).toBe(produced);
    expect(await dump(lagging, PARTITION)).toEqual(expected);
    // the time index is exact after a delta: nothing closed before the earliest window
    const first = expected.windows[0]!;
    expect(
      await collect(lagging.partition(PARTITION).windowsEndingBefore(first.windowEnd)),
    ).toEqual([]);
    expect(await lagging.readCheckpoint(PARTITION)).toMatchObject({
      sourceOffset: expectedCp?.sourceOffset,
    });
    await lagging.close();
  });

  it("never applies records of an aborted transaction", async () => {
    const txTopic = changelogTopicName(unique("state_tx"), "s");
    await createChangelogTopic({ kafka, topic: txTopic, numPartitions: 1 });
    const tp = kafka.producer({
      transactionalId: unique("state-tx"),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await tp.connect();
    try {
      let tx = await tp.transaction();
      const store = await openStateStore<Value>({
        dir: tempDir(),
        name: "s",
        changelog: createKafkaChangelogWriter({ producer: () => tx, topic: txTopic }),
      });
      const p = store.partition(0);
      await p.put("a", { n: 1, tag: "committed" });
      await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 1 });
      await tx.commit();
      tx = await tp.transaction();
      await p.put("a", { n: 2, tag: "aborted" });
      await p.put("b", { n: 2, tag: "aborted" });
      await store.checkpoint({ partition: 0, sourceOffset: 2, streamTime: 2 });
      await tx.abort();
      await store.close();

      const other = await openStateStore<Value>({ dir: tempDir(), name: "s" });
      const r = await restore({ kafka, topic: txTopic, partition: 0, store: other });
      expect(r.mode).toBe("full");
      expect(await other.partition(0).get("a")).toEqual({ n: 1, tag: "committed" });
      expect(await other.partition(0).get("b")).toBeUndefined();
      expect(await other.readCheckpoint(0)).toMatchObject({ sourceOffset: 1 });
      await other.close();
    } finally {
      await tp.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [txTopic] }).catch(() => {});
      await admin.disconnect();
    }
  });

  it("refuses an existing changelog topic whose partition count differs from the source", async () => {
    const err = await createChangelogTopic({ kafka, topic, numPartitions: 2 }).catch(
      (e: unknown) => e,
    );
    expect(StateError.isInstance(err) && err.code).toBe("STATE_INVALID_OPTIONS");
  });

  it("STATE_RESTORE_FAILED when the changelog topic does not exist", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "missing" });
    const err = await restore({
      kafka,
      topic: unique("state_missing"),
      partition: 0,
      store,
      timeout: "20s",
    }).catch((e: unknown) => e);
    expect(StateError.isInstance(err) && err.code).toBe("STATE_RESTORE_FAILED");
    expect((err as StateError).retryable).toBe(true);
    await store.close();
  });
});
