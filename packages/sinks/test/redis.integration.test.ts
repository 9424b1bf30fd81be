import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisSink, type DeadLetter, type RedisSinkOptions } from "../src/index.js";
import { runSinkConformance } from "../src/test.js";
import { env, hostPort, sleep, streamThroughOutage, TcpProxy, uniqueName } from "./helpers.js";

const redis = new Redis(env.redisUrl);
const prefixes: string[] = [];

afterAll(async () => {
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

function prefix(name: string): string {
  const p = `${uniqueName(`sluice_test_${name}`)}:`;
  prefixes.push(p);
  return p;
}

interface Rec {
  id: string;
  key: string;
  value: number;
  partition: number;
  offset: number;
}

const rec = (i: number): Rec => ({
  id: `r${i}`,
  key: `user-${i % 4}`,
  value: i + 1,
  partition: i % 3,
  offset: i,
});

/** Every identity counted in the `seen` hash, once per application. */
async function readSeen(keyPrefix: string): Promise<string[]> {
  const seen = await redis.hgetall(`${keyPrefix}seen`);
  return Object.entries(seen).flatMap(([id, n]) => Array.from({ length: Number(n) }, () => id));
}

let confPrefix = "";
runSinkConformance<Rec>({
  name: "conformance: Redis with per-partition fencing (HINCRBY per record)",
  makeSink: (hints) =>
    createRedisSink<Rec>({
      url: env.redisUrl,
      keyPrefix: confPrefix,
      write: (r) => [{ command: "HINCRBY", key: "seen", args: [r.id, 1] }],
      ...hints,
    }),
  makeRecords: (n, start) => Array.from({ length: n }, (_, i) => rec(start + i)),
  identity: (r) => r.id,
  readBack: () => readSeen(confPrefix),
  reset: async () => {
    confPrefix = prefix("conf");
  },
});

let idPrefix = "";
runSinkConformance<Omit<Rec, "offset">>({
  name: "conformance: Redis with identity fencing (records without a sequence)",
  makeSink: (hints) =>
    createRedisSink<Omit<Rec, "offset">>({
      url: env.redisUrl,
      keyPrefix: idPrefix,
      write: (r) => [{ command: "HINCRBY", key: "seen", args: [r.id, 1] }],
      ...hints,
    }),
  makeRecords: (n, start) =>
    Array.from({ length: n }, (_, i) => {
      const { offset: _o, ...r } = rec(start + i);
      return r;
    }),
  identity: (r) => r.id,
  readBack: () => readSeen(idPrefix),
  reset: async () => {
    idPrefix = prefix("idconf");
  },
});

async function snapshot(p: string): Promise<Record<string, unknown>> {
  const keys = (await redis.keys(`${p}*`)).sort();
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const type = await redis.type(k);
    out[k] =
      type === "hash"
        ? await redis.hgetall(k)
        : type === "zset"
          ? await redis.zrange(k, 0, -1, "WITHSCORES")
          : type === "stream"
            ? (await redis.xrange(k, "-", "+")).map(([, f]) => f)
            : await redis.get(k);
  }
  return out;
}

describe("Redis sink", () => {
  const modes: Array<[string, Partial<RedisSinkOptions<Rec>>]> = [
    ["counter", { write: "counter" }],
    ["leaderboard (ZINCRBY)", { write: "leaderboard", scoreMode: "increment" }],
    ["stream", { write: "stream" }],
    ["hash", { write: "hash", fields: (r) => ({ last: r.value, id: r.id }) }],
  ];
  for (const [label, opts] of modes) {
    it(`${label}: replaying the same batch 3 times leaves Redis unchanged`, async () => {
      const keyPrefix = prefix(label.split(" ")[0]!);
      const records = Array.from({ length: 40 }, (_, i) => rec(i));
      const run = async () => {
        const sink = createRedisSink<Rec>({
          url: env.redisUrl,
          keyPrefix,
          maxBatchRows: 16,
          ...opts,
        } as RedisSinkOptions<Rec>);
        await sink.write(records);
        await sink.close();
      };
      await run();
      const first = await snapshot(keyPrefix);
      for (let i = 0; i < 3; i++) await run();
      expect(await snapshot(keyPrefix)).toEqual(first);
      const data = Object.fromEntries(Object.entries(first).filter(([k]) => !k.includes("fence")));
      if (label === "counter") {
        const sums: Record<string, string> = {};
        for (const k of ["user-0", "user-1", "user-2", "user-3"]) {
          const total = records.filter((r) => r.key === k).reduce((a, r) => a + r.value, 0);
          sums[`${keyPrefix}${k}`] = String(total);
        }
        expect(data).toEqual(sums);
      }
      if (label === "stream") expect((data[`${keyPrefix}results`] as unknown[]).length).toBe(40);
      for (const p of [0, 1, 2]) {
        const last = Math.max(...records.filter((r) => r.partition === p).map((r) => r.offset));
        expect(first[`${keyPrefix}fence:${keyPrefix}${opts.write}:${p}`]).toBe(String(last));
      }
    });
  }

  it("never splits records sharing a partition and sequence across batches", async () => {
    const keyPrefix = prefix("sameseq");
    const sink = createRedisSink<Rec>({
      url: env.redisUrl,
      keyPrefix,
      write: "counter",
      key: () => "total",
      maxBatchRows: 2,
      maxBufferedRows: 10,
    });
    // one source record (partition 0, offset 5) emitted three results
    const same = [0, 1, 2].map((i) => ({
      id: `s${i}`,
      key: "k",
      value: 10,
      partition: 0,
      offset: 5,
    }));
    await sink.write([...same, { id: "n", key: "k", value: 1, partition: 0, offset: 6 }]);
    await sink.close();
    expect(await redis.get(`${keyPrefix}total`)).toBe("31");
  });

  it("a crash replay that overlaps the applied prefix adds only the new records", async () => {
    const keyPrefix = prefix("overlap");
    const make = () =>
      createRedisSink<Rec>({ url: env.redisUrl, keyPrefix, write: "counter", key: () => "total" });
    const a = make();
    await a.write(Array.from({ length: 10 }, (_, i) => rec(i)));
    await a.close();
    const b = make();
    await b.write(Array.from({ length: 25 }, (_, i) => rec(i))); // offsets 0..24, 0..9 already applied
    await b.close();
    expect(await redis.get(`${keyPrefix}total`)).toBe(String((25 * 26) / 2));
  });

  it("publishes results to live subscribers exactly once across replays", async () => {
    const keyPrefix = prefix("pub");
    const sub = new Redis(env.redisUrl);
    const got: string[] = [];
    await sub.subscribe(`${keyPrefix}results`);
    sub.on("message", (_c, m) => got.push(JSON.parse(m).id));
    try {
      for (let round = 0; round < 2; round++) {
        const sink = createRedisSink<Rec>({ url: env.redisUrl, keyPrefix, write: "publish" });
        await sink.write([rec(0), rec(1), rec(2)]);
        await sink.close();
      }
      for (let i = 0; i < 50 && got.length < 3; i++) await sleep(10);
      await sleep(50);
      expect(got.sort()).toEqual(["r0", "r1", "r2"]);
    } finally {
      await sub.quit();
    }
  });

  it("leaderboard ZADD, ttlMs and hash tags for Cluster slots", async () => {
    const keyPrefix = prefix("lb");
    const sink = createRedisSink<Rec>({
      url: env.redisUrl,
      keyPrefix,
      write: "leaderboard",
      key: () => "top",
      ttlMs: "1h",
      hashTags: true,
      jobId: "job1",
    });
    await sink.write([rec(0), rec(3), rec(4)]); // partitions 0, 0, 1
    await sink.close();
    expect(sink.fenceKey(0)).toBe(`${keyPrefix}{job1:0}:fence`);
    expect(await redis.zrange(`${keyPrefix}{job1:0}:top`, 0, -1, "WITHSCORES")).toEqual([
      "user-0",
      "1",
      "user-3",
      "4",
    ]);
    expect(await redis.zrange(`${keyPrefix}{job1:1}:top`, 0, -1, "WITHSCORES")).toEqual([
      "user-0",
      "5",
    ]);
    const ttl = await redis.pttl(`${keyPrefix}{job1:0}:top`);
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(await redis.get(sink.fenceKey(1))).toBe("4");
  });

  it("hostile keys and values are stored verbatim; disallowed commands are refused", async () => {
    const keyPrefix = prefix("hostile");
    const nasty = [
      "'; FLUSHALL; --",
      "{tag}",
      "line\nbreak",
      "ünï 🚀",
      "a b\r\n*3",
      "nul\u0000byte",
      '["s","1"]',
    ];
    const sink = createRedisSink<Rec & { note: string }>({
      url: env.redisUrl,
      keyPrefix,
      write: "hash",
      fields: (r) => ({ note: r.note }),
    });
    await sink.write(nasty.map((n, i) => ({ ...rec(i), key: n, note: n })));
    await sink.close();
    for (const n of nasty) expect(await redis.hget(`${keyPrefix}${n}`, "note")).toBe(n);
    const evil = createRedisSink<Rec>({
      url: env.redisUrl,
      keyPrefix,
      write: () => [{ command: "FLUSHALL" as never, key: "x", args: [] }],
    });
    await expect(evil.write([rec(0)])).rejects.toMatchObject({ code: "SINK_INVALID_RECORD" });
    await evil.close();
  });

  it("dead-letters a record Redis refuses and still applies the rest exactly once", async () => {
    const keyPrefix = prefix("dlq");
    await redis.hset(`${keyPrefix}user-1`, "not", "a counter");
    const letters: DeadLetter<Rec>[] = [];
    const run = async () => {
      const sink = createRedisSink<Rec>({
        url: env.redisUrl,
        keyPrefix,
        write: "counter",
        deadLetter: (l) => void letters.push(...l),
      });
      await sink.write(Array.from({ length: 8 }, (_, i) => rec(i)));
      await sink.close();
    };
    await run();
    await run();
    expect(letters.map((l) => [l.id, l.code])).toEqual([
      ["r1", "REDIS_WRONGTYPE"],
      ["r5", "REDIS_WRONGTYPE"],
    ]);
    expect(await redis.get(`${keyPrefix}user-0`)).toBe(String(1 + 5));
    expect(await redis.get(`${keyPrefix}user-2`)).toBe(String(3 + 7));
  });

  it("window results (no offset) are fenced by identity: replays change nothing, markers expire", async () => {
    const keyPrefix = prefix("win");
    const results = Array.from({ length: 12 }, (_, i) => ({
      key: `user-${i % 3}`,
      windowStart: 60_000 * Math.floor(i / 3),
      windowEnd: 60_000 * (Math.floor(i / 3) + 1),
      value: i + 1,
      final: true,
      emitSeq: 0,
      partition: i % 2,
      id: `${60_000 * Math.floor(i / 3)}:${60_000 * (Math.floor(i / 3) + 1)}:0:user-${i % 3}`,
    }));
    const run = async (records: typeof results) => {
      const sink = createRedisSink<(typeof results)[number]>({
        url: env.redisUrl,
        keyPrefix,
        write: "leaderboard",
        scoreMode: "increment",
        key: () => "clicks",
        identityTtlMs: "1h",
        maxBatchRows: 5,
      });
      await sink.write(records);
      await sink.close();
    };
    await run(results);
    const expected = await redis.zrange(`${keyPrefix}clicks`, 0, -1, "WITHSCORES");
    expect(expected).toEqual(["user-0", "22", "user-1", "26", "user-2", "30"]);
    await run(results);
    await run([...results].reverse());
    await run(results.slice(4, 9));
    expect(await redis.zrange(`${keyPrefix}clicks`, 0, -1, "WITHSCORES")).toEqual(expected);
    const markers = await redis.keys(`${keyPrefix}applied:*`);
    expect(markers).toHaveLength(12);
    const ttl = await redis.pttl(markers[0]!);
    expect(ttl).toBeGreaterThan(3_500_000);
  });

  it("validates options and refuses bad sequences", async () => {
    const sink = createRedisSink<{ key: string; partition: number; offset: number }>({
      url: env.redisUrl,
      keyPrefix: prefix("badseq"),
      write: "counter",
    });
    await expect(sink.write([{ key: "k", partition: 0, offset: -1 }])).rejects.toMatchObject({
      code: "SINK_INVALID_RECORD",
    });
    await expect(sink.write([{ key: "k", partition: -1, offset: 1 }])).rejects.toMatchObject({
      code: "SINK_INVALID_RECORD",
    });
    await sink.close();
    expect(() => createRedisSink({ url: env.redisUrl, write: "nope" as never })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
    expect(() => createRedisSink({ write: "counter" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
    expect(() => createRedisSink({ url: env.redisUrl, write: "counter", jobId: "a{b}" })).toThrow(
      expect.objectContaining({ code: "SINK_INVALID_OPTIONS" }),
    );
  });

  it("survives a 10 s Redis outage: holds writers back, then counts and sums are exact", async () => {
    const { host, port } = hostPort(env.redisUrl);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    const keyPrefix = prefix("outage");
    const sink = createRedisSink<Rec>({
      url: `redis://${host}:${proxy.port}`,
      keyPrefix,
      write: (r) => [
        { command: "INCRBY", key: "count", args: [1] },
        { command: "INCRBY", key: "sum", args: [r.value] },
        { command: "XADD", key: "log", args: ["*", "id", r.id] },
      ],
      maxBatchRows: 50,
      maxBufferedRows: 300,
      maxDelayMs: 50,
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    });
    try {
      expect((await sink.health()).ok).toBe(true);
      const run = await streamThroughOutage({ sink, proxy, outageMs: 10_000, record: rec });
      expect(run.duringOutage).toBeLessThanOrEqual(300 + 10);
      expect(run.backpressure).toBeGreaterThan(0);
      expect(await redis.get(`${keyPrefix}count`)).toBe(String(run.total));
      expect(await redis.get(`${keyPrefix}sum`)).toBe(String((run.total * (run.total + 1)) / 2));
      expect(await redis.xlen(`${keyPrefix}log`)).toBe(run.total);
    } finally {
      await sink.close().catch(() => {});
      await proxy.stop();
    }
  }, 60_000);
});
