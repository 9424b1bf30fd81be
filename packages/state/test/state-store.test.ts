import { writeFileSync } from "node:fs";
import path from "node:path";
import { ClassicLevel } from "classic-level";
import { describe, expect, it } from "vitest";
import {
  createKafkaChangelogWriter,
  openStateStore,
  StateError,
  type ValueCodec,
} from "../src/index.js";
import { collect, tempDir } from "./helpers.js";

async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    expect(StateError.isInstance(err)).toBe(true);
    return (err as StateError).code;
  }
  return undefined;
}

describe("key-value state", () => {
  it("reads its own writes, persists only checkpointed changes, and survives reopen", async () => {
    const dir = tempDir();
    const store = await openStateStore<{ n: number }>({ dir, name: "kv" });
    expect(store.status).toBe("open");
    expect(store.openedFrom).toBe("new");
    const p = store.partition(0);
    expect(store.partition(0)).toBe(p);
    await p.put("a", { n: 1 });
    await p.put("b", { n: 2 });
    expect(await p.get("a")).toEqual({ n: 1 });
    await store.checkpoint({ partition: 0, sourceOffset: "10", streamTime: 1000 });
    await p.put("a", { n: 3 });
    await p.delete("b");
    await p.put("c", { n: 4 });
    expect(await p.get("a")).toEqual({ n: 3 });
    expect(await p.get("b")).toBeUndefined();
    await store.close();

    const again = await openStateStore<{ n: number }>({ dir, name: "kv" });
    expect(again.openedFrom).toBe("existing");
    const q = again.partition(0);
    // the uncheckpointed changes were discarded at close
    expect(await q.get("a")).toEqual({ n: 1 });
    expect(await q.get("b")).toEqual({ n: 2 });
    expect(await q.get("c")).toBeUndefined();
    expect(await again.readCheckpoint(0)).toMatchObject({ sourceOffset: "10", streamTime: 1000 });
    expect(await again.readCheckpoint(1)).toBeUndefined();
    await again.close();
  });

  it("keeps partitions apart, lists them and wipes one alone", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "parts" });
    await store.partition(0).put("k", "zero");
    await store.partition(7).put("k", "seven");
    await store.partition(7).putWindow("k", 0, 10, "w7");
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await store.checkpoint({ partition: 7, sourceOffset: 1, streamTime: 0 });
    expect(await store.partition(0).get("k")).toBe("zero");
    expect(await store.partitions()).toEqual([0, 7]);
    await store.wipe(7);
    expect(await store.partition(7).get("k")).toBeUndefined();
    expect(await collect(store.partition(7).windowsEndingBefore(100))).toEqual([]);
    expect(await store.readCheckpoint(7)).toBeUndefined();
    expect(await store.partition(0).get("k")).toBe("zero");
    expect(await store.partitions()).toEqual([0]);
    await store.close();
  });

  it("returns the checkpoint's changelog mutations with tombstones and a metadata record", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "muts" });
    const p = store.partition(2);
    await p.put("x", 1);
    await p.put("y", 2);
    await store.checkpoint({ partition: 2, sourceOffset: 5, streamTime: 50 });
    await p.delete("x");
    await p.put("y", 3);
    const muts = await store.checkpoint({
      partition: 2,
      sourceOffset: 6,
      streamTime: 60,
      changelogOffset: 4,
    });
    const byKey = new Map(muts.map((m) => [m.key.subarray(4).toString("latin1"), m.value]));
    expect(muts.every((m) => m.key.readUInt32BE(0) === 2)).toBe(true);
    expect(byKey.get("\u0001x")).toBeNull();
    expect(byKey.get("\u0001y")?.toString()).toBe("3");
    expect(JSON.parse(byKey.get("\u0000checkpoint")!.toString())).toEqual({
      sourceOffset: 6,
      streamTime: 60,
    });
    expect(muts).toHaveLength(3);
    expect(await store.readCheckpoint(2)).toMatchObject({
      sourceOffset: 6,
      streamTime: 60,
      changelogOffset: 4,
    });
    // an empty checkpoint still records metadata
    expect(await store.checkpoint({ partition: 2, sourceOffset: 7, streamTime: 70 })).toHaveLength(
      1,
    );
    await store.close();
  });

  it("iterates entries, checkpointed and pending", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "entries" });
    const p = store.partition(1);
    await p.put("a", 1);
    await p.put("b", 2);
    await store.checkpoint({ partition: 1, sourceOffset: 1, streamTime: 0 });
    await p.put("b", 20);
    await p.delete("a");
    await p.put("c", 3);
    const all = new Map(await collect(p.entries()));
    expect(all).toEqual(
      new Map([
        ["b", 20],
        ["c", 3],
      ]),
    );
    await store.close();
  });
});

describe("window state and time index", () => {
  it("finds windows closed by stream time in end order, across pending and checkpointed state", async () => {
    const store = await openStateStore<number>({ dir: tempDir(), name: "win" });
    const p = store.partition(0);
    await p.putWindow("u1", 0, 100, 1);
    await p.putWindow("u2", -50, 50, 2); // negative times sort correctly
    await p.putWindow("u1", 100, 200, 3);
    await store.checkpoint({ partition: 0, sourceOffset: 3, streamTime: 150 });
    await p.putWindow("u3", 20, 80, 4); // pending
    await p.putWindow("u1", 0, 100, 10); // pending overwrite of a checkpointed window
    const closed = await collect(p.windowsEndingBefore(150));
    expect(closed.map((w) => [w.key, w.windowStart, w.windowEnd, w.value])).toEqual([
      ["u2", -50, 50, 2],
      ["u3", 20, 80, 4],
      ["u1", 0, 100, 10],
    ]);
    expect(await collect(p.windowsEndingBefore(50))).toEqual([]);
    expect(await p.getWindow("u1", 100)).toEqual({
      key: "u1",
      windowStart: 100,
      windowEnd: 200,
      value: 3,
    });
    await store.close();
  });

  it("moves the index when a window's end changes and drops it when deleted, also across checkpoints", async () => {
    const dir = tempDir();
    let store = await openStateStore<string>({ dir, name: "sess", cacheMaxBytes: 1 });
    let p = store.partition(0);
    await p.putWindow("s", 0, 100, "a");
    await p.putWindow("t", 0, 100, "b");
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await store.close();
    // fresh process, nothing cached: the old end must be found on disk
    store = await openStateStore<string>({ dir, name: "sess", cacheMaxBytes: 1 });
    p = store.partition(0);
    await p.putWindow("s", 0, 300, "merged"); // session grew
    await p.deleteWindow("t", 0);
    await store.checkpoint({ partition: 0, sourceOffset: 2, streamTime: 0 });
    expect(await collect(p.windowsEndingBefore(200))).toEqual([]);
    const later = await collect(p.windowsEndingBefore(400));
    expect(later.map((w) => [w.key, w.windowEnd, w.value])).toEqual([["s", 300, "merged"]]);
    await store.close();
    // the raw index holds exactly one entry
    const db = new ClassicLevel<Buffer, Buffer>(path.join(dir, "sess"), {
      keyEncoding: "buffer",
      valueEncoding: "buffer",
    });
    const keys = await db.keys().all();
    expect(keys.filter((k) => k[4] === 0x03)).toHaveLength(1);
    await db.close();
  });

  it("lists every window of a key in start order for session merging", async () => {
    const store = await openStateStore<number>({ dir: tempDir(), name: "forkey" });
    const p = store.partition(0);
    await p.putWindow("k", 30, 40, 3);
    await p.putWindow("k", 10, 20, 1);
    await p.putWindow("kk", 10, 20, 99); // a longer key with the same prefix is another key
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await p.putWindow("k", 20, 25, 2);
    await p.deleteWindow("k", 30);
    const ws = await collect(p.windowsForKey("k"));
    expect(ws.map((w) => [w.windowStart, w.windowEnd, w.value])).toEqual([
      [10, 20, 1],
      [20, 25, 2],
    ]);
    await store.close();
  });

  it("allows deleting windows while iterating them", async () => {
    const store = await openStateStore<number>({ dir: tempDir(), name: "deliter" });
    const p = store.partition(0);
    for (let i = 0; i < 2500; i++) await p.putWindow(`k${i % 50}`, i * 10, i * 10 + 10, i);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    let n = 0;
    for await (const w of p.windowsEndingBefore(10_000)) {
      await p.deleteWindow(w.key, w.windowStart);
      n++;
    }
    expect(n).toBe(999); // ends 10, 20, …, 9990
    await store.checkpoint({ partition: 0, sourceOffset: 2, streamTime: 0 });
    expect(await collect(p.windowsEndingBefore(10_000))).toEqual([]);
    expect(await collect(p.windowsEndingBefore(1e9))).toHaveLength(1501);
    await store.close();
  });

  it("expires windows past retention in batches, inside checkpoints", async () => {
    const store = await openStateStore<number>({
      dir: tempDir(),
      name: "exp",
      retention: "1s",
      expiryBatchSize: 40,
    });
    const p = store.partition(0);
    for (let i = 0; i < 100; i++) await p.putWindow(`k${i}`, i * 100, i * 100 + 100, i);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    // windows ending before 10_000 - 1000 = 9000 are expired: ends 100..8900 = 89 windows
    const m1 = await store.checkpoint({ partition: 0, sourceOffset: 2, streamTime: 10_000 });
    expect(m1.filter((m) => m.value === null)).toHaveLength(40);
    await store.checkpoint({ partition: 0, sourceOffset: 3, streamTime: 10_000 });
    await store.checkpoint({ partition: 0, sourceOffset: 4, streamTime: 10_000 });
    const left = await collect(p.windowsEndingBefore(1e9));
    expect(left.map((w) => w.windowEnd)).toEqual(
      Array.from({ length: 11 }, (_, i) => 9000 + i * 100),
    );
    expect(await p.expireWindows(9500)).toBe(5);
    await store.close();
  });
});

describe("cache", () => {
  it("evicts under a tiny byte bound and still reads correctly from disk", async () => {
    const store = await openStateStore<string>({
      dir: tempDir(),
      name: "evict",
      cacheMaxBytes: 2048,
    });
    const p = store.partition(0);
    for (let i = 0; i < 500; i++) await p.put(`key-${i}`, "v".repeat(100) + i);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    const s1 = await store.stats();
    expect(s1.cacheBytes).toBeLessThanOrEqual(2048);
    expect(s1.keys).toBe(500);
    expect(s1.dirtyEntries).toBe(0);
    for (let i = 0; i < 500; i++) expect(await p.get(`key-${i}`)).toBe("v".repeat(100) + i);
    const s2 = await store.stats();
    expect(s2.cacheMisses).toBeGreaterThan(450); // most reads had to go to disk
    expect(s2.cacheBytes).toBeLessThanOrEqual(2048);
    // a recently read key is a hit
    await p.get("key-499");
    const s3 = await store.stats();
    expect(s3.cacheHits).toBe(s2.cacheHits + 1);
    // a checkpoint larger than the cache must not leave stale versions cached
    expect(await p.get("key-0")).toBe("v".repeat(100) + 0);
    for (let i = 0; i < 500; i++) await p.put(`key-${i}`, `new-${i}`);
    await store.checkpoint({ partition: 0, sourceOffset: 2, streamTime: 0 });
    for (let i = 0; i < 500; i++) expect(await p.get(`key-${i}`)).toBe(`new-${i}`);
    await store.close();
  });

  it("serves repeated reads from the cache with a large bound", async () => {
    const store = await openStateStore<number>({ dir: tempDir(), name: "hits" });
    const p = store.partition(0);
    for (let i = 0; i < 100; i++) await p.put(`k${i}`, i);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    for (let i = 0; i < 100; i++) expect(await p.get(`k${i}`)).toBe(i);
    const s = await store.stats();
    expect(s.cacheMisses).toBe(0);
    expect(s.cacheHitRatio).toBe(1);
    expect(s.lastCheckpointAgeMs).toBeGreaterThanOrEqual(0);
    await store.close();
  });
});

describe("synchronous updates (putSync, deleteSync)", () => {
  it("are written by the next checkpoint only, atomically, and a change made during a checkpoint waits for the next one", async () => {
    const dir = tempDir();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const writes: Array<Array<string | null>> = [];
    const store = await openStateStore<string>({
      dir,
      name: "sync",
      changelog: {
        async write(_partition, messages) {
          writes.push(messages.map((m) => (m.value === null ? null : m.value.toString())));
          await gate;
          return undefined;
        },
      },
    });
    const p = store.partition(0);
    p.putSync("a", "a1");
    p.putSync("b", "b1");
    expect(await p.get("a")).toBe("a1");
    const first = store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    // the checkpoint has taken its changes; these belong to the next one
    await new Promise((r) => setImmediate(r));
    p.putSync("a", "a2");
    p.deleteSync("b");
    expect(await p.get("a")).toBe("a2");
    expect(await p.get("b")).toBeUndefined();
    release();
    const m1 = await first;
    expect(
      m1.filter((m) => m.value !== null && m.key[4] === 1).map((m) => String(m.value)),
    ).toEqual(['"a1"', '"b1"']);
    expect(writes[0]).toHaveLength(3); // a, b and the checkpoint metadata
    expect(await store.readCheckpoint(0)).toMatchObject({ sourceOffset: 1 });
    const s1 = await store.stats();
    expect(s1.dirtyEntries).toBe(2);
    const m2 = await store.checkpoint({ partition: 0, sourceOffset: 2, streamTime: 0 });
    expect(m2.map((m) => (m.value === null ? null : m.key[4]))).toEqual([1, null, 0]);
    await store.close();
    const again = await openStateStore<string>({ dir, name: "sync" });
    expect(await again.partition(0).get("a")).toBe("a2");
    expect(await again.partition(0).get("b")).toBeUndefined();
    expect(await again.readCheckpoint(0)).toMatchObject({ sourceOffset: 2 });
    await again.close();
  });

  it("keep changes of a failed checkpoint, the newer value winning", async () => {
    let fail = true;
    const store = await openStateStore<number>({
      dir: tempDir(),
      name: "sync-fail",
      changelog: {
        async write() {
          if (fail) throw new Error("broker down");
          return undefined;
        },
      },
    });
    const p = store.partition(0);
    p.putSync("x", 1);
    p.putSync("y", 1);
    expect(await code(store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 }))).toBe(
      "STATE_CHANGELOG_FAILED",
    );
    p.putSync("x", 2);
    fail = false;
    const m = await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    expect(m).toHaveLength(3);
    expect(await p.get("x")).toBe(2);
    expect(await p.get("y")).toBe(1);
    expect((await store.stats()).dirtyEntries).toBe(0);
    await store.close();
  });

  it("respect the cache bound, shadow cached versions and validate like put", async () => {
    const store = await openStateStore<string>({
      dir: tempDir(),
      name: "sync-evict",
      cacheMaxBytes: 2048,
    });
    const p = store.partition(0);
    for (let i = 0; i < 500; i++) p.putSync(`key-${i}`, `v${i}`);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    const s = await store.stats();
    expect(s.keys).toBe(500);
    expect(s.cacheBytes).toBeLessThanOrEqual(2048);
    expect(await p.get("key-499")).toBe("v499"); // cached
    p.putSync("key-499", "new");
    expect(await p.get("key-499")).toBe("new");
    expect(await p.get("key-0")).toBe("v0"); // from disk
    expect(await code(() => p.putSync("k", undefined as unknown as string))).toBe(
      "STATE_INVALID_ARGUMENT",
    );
    expect(await code(() => p.putSync(7 as unknown as string, "v"))).toBe("STATE_INVALID_ARGUMENT");
    await store.close();
    expect(await code(() => p.putSync("k", "v"))).toBe("STATE_CLOSED");
    expect(await code(() => p.deleteSync("k"))).toBe("STATE_CLOSED");
  });
});

describe("write-back of updates", () => {
  it("a partition handle keeps writing to the current changes across checkpoint, wipe and restore, and stops at close", async () => {
    const dir = tempDir();
    const store = await openStateStore<string>({ dir, name: "handle", retention: 1000 });
    const p = store.partition(3);
    p.putSync("a", "1");
    await store.checkpoint({ partition: 3, sourceOffset: 1, streamTime: 0 });
    p.putSync("b", "2");
    await p.put("c", "3");
    await store.wipe(3); // drops a (on disk) and b, c (pending)
    p.putSync("d", "4");
    p.deleteSync("e");
    await store.checkpoint({ partition: 3, sourceOffset: 2, streamTime: 0 });
    expect(new Map(await collect(p.entries()))).toEqual(new Map([["d", "4"]]));
    // a checkpoint still queued when close starts: updates are refused at once
    p.putSync("f", "6");
    const pending = store.checkpoint({ partition: 3, sourceOffset: 3, streamTime: 5000 });
    const closing = store.close();
    expect(await code(() => p.putSync("g", "7"))).toBe("STATE_CLOSED");
    expect(await code(p.put("g", "7"))).toBe("STATE_CLOSED");
    expect(await code(p.delete("g"))).toBe("STATE_CLOSED");
    expect(await code(() => p.deleteSync("g"))).toBe("STATE_CLOSED");
    await pending.catch(() => {});
    await closing;
    const again = await openStateStore<string>({ dir, name: "handle" });
    const q = again.partition(3);
    expect(await q.get("a")).toBeUndefined();
    expect(await q.get("d")).toBe("4");
    expect(await q.get("g")).toBeUndefined();
    await again.close();
  });

  it("checkpoints exactly the entries updated since the last one, under a tiny cache bound, round after round", async () => {
    const dir = tempDir();
    const store = await openStateStore<string>({ dir, name: "exact", cacheMaxBytes: 4096 });
    const p = store.partition(0);
    const model = new Map<string, string>();
    const keyCount = 2000;
    for (let i = 0; i < keyCount; i++) {
      p.putSync(`k${i}`, `v0-${i}`);
      model.set(`k${i}`, `v0-${i}`);
    }
    const first = await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    expect(first).toHaveLength(keyCount + 1);
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 1; round <= 4; round++) {
      // updated, re-updated, deleted and new keys, through every update call
      const expected = new Map<string, string | null>();
      for (let u = 0; u < 600; u++) {
        const key = `k${rnd(keyCount + 200)}`;
        const op = rnd(10);
        if (op === 0) {
          p.deleteSync(key);
          model.delete(key);
          expected.set(key, null);
        } else if (op === 1) {
          await p.delete(key);
          model.delete(key);
          expected.set(key, null);
        } else {
          const v = `v${round}-${u}`;
          if (op < 6) p.putSync(key, v);
          else await p.put(key, v);
          model.set(key, v);
          expected.set(key, v);
        }
      }
      const muts = await store.checkpoint({ partition: 0, sourceOffset: round + 1, streamTime: 0 });
      const written = new Map<string, string | null>();
      for (const m of muts) {
        if (m.key[4] !== 1) continue; // metadata record
        const key = m.key.toString("utf8", 5);
        expect(written.has(key)).toBe(false); // each updated key once
        written.set(key, m.value === null ? null : (JSON.parse(m.value.toString()) as string));
      }
      expect(written).toEqual(expected);
      expect(muts).toHaveLength(expected.size + 1);
      expect((await store.stats()).dirtyEntries).toBe(0);
      expect((await store.stats()).cacheBytes).toBeLessThanOrEqual(4096);
      // reads through the cache and from disk agree with the model
      for (let i = 0; i < keyCount + 200; i++)
        expect(await p.get(`k${i}`)).toBe(model.get(`k${i}`));
    }
    // nothing after the last checkpoint survives; everything before it does
    p.putSync("k0", "lost");
    await store.close();
    const again = await openStateStore<string>({ dir, name: "exact" });
    expect(new Map(await collect(again.partition(0).entries()))).toEqual(model);
    expect(await again.readCheckpoint(0)).toMatchObject({ sourceOffset: 5 });
    await again.close();
  });
});

describe("codecs", () => {
  it("stores v8 values (Map, BigInt) and custom codecs, and refuses a different codec on reopen", async () => {
    const dir = tempDir();
    const store = await openStateStore({ dir, name: "v8", codec: "v8" });
    await store.partition(0).put("m", new Map([["a", 1n]]));
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await store.close();
    const again = await openStateStore({ dir, name: "v8", codec: "v8", cacheMaxBytes: 1 });
    expect(await again.partition(0).get("m")).toEqual(new Map([["a", 1n]]));
    await again.close();
    expect(await code(openStateStore({ dir, name: "v8" }))).toBe("STATE_INVALID_OPTIONS");

    const upper: ValueCodec<string> = {
      name: "upper",
      encode: (v) => Buffer.from(v.toUpperCase()),
      decode: (b) => b.toString(),
    };
    const custom = await openStateStore({ dir, name: "custom", codec: upper, cacheMaxBytes: 1 });
    await custom.partition(0).put("k", "abc");
    await custom.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    expect(await custom.partition(0).get("k")).toBe("ABC");
    await custom.close();
  });
});

describe("errors", () => {
  it("STATE_INVALID_OPTIONS", async () => {
    expect(await code(openStateStore({ dir: "", name: "x" }))).toBe("STATE_INVALID_OPTIONS");
    expect(await code(openStateStore({ dir: tempDir(), name: "../x" }))).toBe(
      "STATE_INVALID_OPTIONS",
    );
    expect(await code(openStateStore({ dir: tempDir(), name: "x", cacheMaxBytes: 0 }))).toBe(
      "STATE_INVALID_OPTIONS",
    );
    expect(await code(openStateStore({ dir: tempDir(), name: "x", retention: "soon" }))).toBe(
      "STATE_INVALID_OPTIONS",
    );
    expect(await code(openStateStore({ dir: tempDir(), name: "x", codec: "yaml" as never }))).toBe(
      "STATE_INVALID_OPTIONS",
    );
    expect(
      await code(openStateStore({ dir: tempDir(), name: "x", onCorruption: "ignore" as never })),
    ).toBe("STATE_INVALID_OPTIONS");
  });

  it("STATE_INVALID_OPTIONS from the changelog writer factory", async () => {
    const producer = { send: async () => [] };
    expect(await code(() => createKafkaChangelogWriter({ producer, topic: "" }))).toBe(
      "STATE_INVALID_OPTIONS",
    );
    expect(
      await code(() => createKafkaChangelogWriter({ producer: {} as never, topic: "t" })),
    ).toBe("STATE_INVALID_OPTIONS");
    expect(
      await code(() => createKafkaChangelogWriter({ producer, topic: "t", maxRequestBytes: 10 })),
    ).toBe("STATE_INVALID_OPTIONS");
    expect(
      await code(() => createKafkaChangelogWriter({ producer, topic: "t", concurrency: 0 })),
    ).toBe("STATE_INVALID_OPTIONS");
  });

  it("STATE_INVALID_ARGUMENT", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "args" });
    expect(await code(() => store.partition(-1))).toBe("STATE_INVALID_ARGUMENT");
    expect(await code(store.partition(0).put(1 as never, 1))).toBe("STATE_INVALID_ARGUMENT");
    expect(await code(store.partition(0).put("k", undefined))).toBe("STATE_INVALID_ARGUMENT");
    expect(await code(store.partition(0).putWindow("k", 0.5, 1, 1))).toBe("STATE_INVALID_ARGUMENT");
    expect(await code(store.checkpoint({ partition: 0, sourceOffset: "x1", streamTime: 0 }))).toBe(
      "STATE_INVALID_ARGUMENT",
    );
    await store.close();
  });

  it("STATE_CLOSED after close; close is idempotent; asyncDispose closes", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "closed" });
    const p = store.partition(0);
    const c1 = store.close();
    expect(store.status).toBe("closing");
    expect(store.close()).toBe(c1);
    await c1;
    expect(store.status).toBe("closed");
    expect(await code(p.get("k"))).toBe("STATE_CLOSED");
    expect(await code(p.put("k", 1))).toBe("STATE_CLOSED");
    expect(await code(store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 }))).toBe(
      "STATE_CLOSED",
    );
    expect(await code(store.readCheckpoint(0))).toBe("STATE_CLOSED");
    expect(await code(() => store.partition(0))).toBe("STATE_CLOSED");
    const dir = tempDir();
    {
      await using s = await openStateStore({ dir, name: "disposed" });
      await s.partition(0).put("k", 1);
    }
    const reopened = await openStateStore({ dir, name: "disposed" }); // lock released
    await reopened.close();
  });

  it("STATE_LOCKED when the directory is open elsewhere", async () => {
    const dir = tempDir();
    const a = await openStateStore({ dir, name: "locked" });
    const err = await openStateStore({ dir, name: "locked" }).catch(
      (e: unknown) => e as StateError,
    );
    expect(StateError.isInstance(err) && err.code).toBe("STATE_LOCKED");
    expect((err as StateError).retryable).toBe(true);
    await a.close();
  });

  it("STATE_OPEN_FAILED when the parent is not a directory", async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "file"), "x");
    expect(await code(openStateStore({ dir: path.join(dir, "file"), name: "s" }))).toBe(
      "STATE_OPEN_FAILED",
    );
  });

  it("STATE_CODEC_FAILED when a value cannot be encoded; the change stays pending", async () => {
    const store = await openStateStore({ dir: tempDir(), name: "codec" });
    const p = store.partition(0);
    await p.put("bad", 10n);
    expect(await code(store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 }))).toBe(
      "STATE_CODEC_FAILED",
    );
    expect(await store.readCheckpoint(0)).toBeUndefined();
    await p.put("bad", 10);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    expect(await store.readCheckpoint(0)).toMatchObject({ sourceOffset: 1 });
    await store.close();
  });

  it("STATE_CHANGELOG_FAILED when the writer hook fails: nothing written locally, changes kept", async () => {
    let fail = true;
    const sent: unknown[] = [];
    const store = await openStateStore({
      dir: tempDir(),
      name: "hook",
      changelog: {
        async write(partition, messages) {
          if (fail) throw new Error("broker unavailable");
          sent.push(...messages);
          expect(messages.every((m) => m.partition === partition)).toBe(true);
          return { nextOffset: "17" };
        },
      },
    });
    const p = store.partition(4);
    await p.put("k", 1);
    const err = await store
      .checkpoint({ partition: 4, sourceOffset: 9, streamTime: 0 })
      .catch((e: unknown) => e);
    expect((err as StateError).code).toBe("STATE_CHANGELOG_FAILED");
    expect((err as StateError).retryable).toBe(true);
    expect(await store.readCheckpoint(4)).toBeUndefined();
    expect(await p.get("k")).toBe(1);
    fail = false;
    await store.checkpoint({ partition: 4, sourceOffset: 9, streamTime: 0 });
    expect(sent).toHaveLength(2);
    expect(await store.readCheckpoint(4)).toMatchObject({ sourceOffset: 9, changelogOffset: "17" });
    await store.close();
  });
});

describe("corrupt directory", () => {
  async function corrupted(): Promise<string> {
    const dir = tempDir();
    const store = await openStateStore({ dir, name: "c" });
    await store.partition(0).put("k", 1);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await store.close();
    // destroy the manifest that CURRENT points to
    const { readFileSync } = await import("node:fs");
    const manifest = readFileSync(path.join(dir, "c", "CURRENT"), "utf8").trim();
    writeFileSync(path.join(dir, "c", manifest), Buffer.alloc(200, 0x5a));
    return dir;
  }

  it("is reported with STATE_CORRUPT when onCorruption is 'error', leaving the files alone", async () => {
    const dir = await corrupted();
    const err = await openStateStore({ dir, name: "c", onCorruption: "error" }).catch(
      (e: unknown) => e,
    );
    expect((err as StateError).code).toBe("STATE_CORRUPT");
    // still corrupt: it was not touched
    expect(await code(openStateStore({ dir, name: "c", onCorruption: "error" }))).toBe(
      "STATE_CORRUPT",
    );
  });

  it("is discarded by default and opens empty, to be restored from the changelog", async () => {
    const dir = await corrupted();
    const store = await openStateStore({ dir, name: "c" });
    expect(store.openedFrom).toBe("reset-after-corruption");
    expect(await store.readCheckpoint(0)).toBeUndefined();
    expect(await store.partition(0).get("k")).toBeUndefined();
    await store.close();
  });

  it("treats a LevelDB directory without the Sluice marker as corrupt", async () => {
    const dir = tempDir();
    const db = new ClassicLevel(path.join(dir, "foreign"));
    await db.put("hello", "world");
    await db.close();
    expect(await code(openStateStore({ dir, name: "foreign", onCorruption: "error" }))).toBe(
      "STATE_CORRUPT",
    );
  });
});

describe("instrumentation", () => {
  it("publishes sluice:state:stats per partition and for the store, only to subscribers", async () => {
    const { subscribe, unsubscribe } = await import("node:diagnostics_channel");
    const store = await openStateStore<number>({ dir: tempDir(), name: "stats" });
    await store.partition(0).put("a", 1);
    await store.partition(3).put("b", 2);
    await store.partition(3).putWindow("b", 0, 10, 3);
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await store.checkpoint({ partition: 3, sourceOffset: 1, streamTime: 0 });
    await store.partition(3).get("b");
    const messages: unknown[] = [];
    const onMessage = (m: unknown) => messages.push(m);
    subscribe("sluice:state:stats", onMessage);
    try {
      const s = await store.stats();
      expect(s.keys).toBe(3);
      expect(s.partitions.map((p) => [p.partition, p.keys])).toEqual([
        [0, 1],
        [3, 2],
      ]);
    } finally {
      unsubscribe("sluice:state:stats", onMessage);
    }
    expect(messages).toEqual([
      {
        store: "stats",
        partition: 0,
        keys: 1,
        bytes: expect.any(Number),
        cacheHits: 1,
        cacheMisses: 0,
      },
      {
        store: "stats",
        partition: 3,
        keys: 2,
        bytes: expect.any(Number),
        cacheHits: 1,
        cacheMisses: 0,
      },
      { store: "stats", keys: 3, bytes: expect.any(Number), cacheHits: 1, cacheMisses: 0 },
    ]);
    await store.stats();
    expect(messages).toHaveLength(3);
    await store.close();
  });
});

describe("damaged files", () => {
  it("detects a damaged table at open (STATE_CORRUPT), or at the first read of it (STATE_IO_FAILED)", async () => {
    const { readdirSync, truncateSync } = await import("node:fs");
    const dir = tempDir();
    // reopening turns the write-ahead log into a table file: the format marker
    // ends up in the first table, the data in the second
    await (await openStateStore({ dir, name: "rot" })).close();
    const store = await openStateStore<string>({ dir, name: "rot" });
    for (let i = 0; i < 1000; i++) await store.partition(0).put(`k${i}`, "x".repeat(100));
    await store.checkpoint({ partition: 0, sourceOffset: 1, streamTime: 0 });
    await store.close();
    await (await openStateStore({ dir, name: "rot" })).close();
    const tables = readdirSync(path.join(dir, "rot"))
      .filter((f) => f.endsWith(".ldb"))
      .sort();
    expect(tables.length).toBeGreaterThanOrEqual(2);
    truncateSync(path.join(dir, "rot", tables[tables.length - 1]!), 10);
    const damaged = await openStateStore<string>({
      dir,
      name: "rot",
      cacheMaxBytes: 1,
      onCorruption: "error",
    });
    // a truncated table cannot be read: the read fails with an I/O error
    expect(await code(damaged.partition(0).get("k500"))).toBe("STATE_IO_FAILED");
    await damaged.close();
    // the table holding the marker: detected at open
    truncateSync(path.join(dir, "rot", tables[0]!), 10);
    expect(await code(openStateStore({ dir, name: "rot", onCorruption: "error" }))).toBe(
      "STATE_CORRUPT",
    );
  });
});

describe("StateError", () => {
  it("marks transient codes retryable and is recognised across copies by its brand", () => {
    const retryable = [
      "STATE_LOCKED",
      "STATE_IO_FAILED",
      "STATE_CHECKPOINT_FAILED",
      "STATE_CHANGELOG_FAILED",
      "STATE_RESTORE_FAILED",
    ];
    const permanent = [
      "STATE_INVALID_OPTIONS",
      "STATE_INVALID_ARGUMENT",
      "STATE_CLOSED",
      "STATE_CORRUPT",
      "STATE_OPEN_FAILED",
      "STATE_CODEC_FAILED",
    ];
    for (const c of retryable) expect(new StateError(c as never, "x").retryable).toBe(true);
    for (const c of permanent) expect(new StateError(c as never, "x").retryable).toBe(false);
    const e = new StateError("STATE_IO_FAILED", "read failed", {
      cause: new Error("EIO"),
      retryable: false,
    });
    expect(e.retryable).toBe(false);
    expect(e.name).toBe("StateError");
    expect((e.cause as Error).message).toBe("EIO");
    expect(StateError.isInstance(e)).toBe(true);
    expect(StateError.isInstance(new Error("x"))).toBe(false);
  });
});
