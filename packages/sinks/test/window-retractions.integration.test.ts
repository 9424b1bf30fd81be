// Retractions of superseded sessions (`retracted: true` window results from
// @sluice/windowing) applied by the sinks: the ClickHouse window-result table
// (server 18.16 and chDB) and the Redis built-in modes end with exactly the
// live windows, also when every batch is replayed after a crash.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { Session } from "chdb";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  type ClickHouseExecutor,
  createClickHouseSink,
  createRedisSink,
  detectClickHouseFeatures,
  fromChdbSession,
  fromClickHouseClient,
  type RedisWrite,
  type WindowResultLike,
  windowResultRow,
  windowResultTableSql,
} from "../src/index.js";
import { env, uniqueName } from "./helpers.js";

type Value = { n: number } | null;
const BASE = 1_700_000_000_000;

function result(key: string, s: number, e: number, emitSeq: number, n: number, final = false) {
  const windowStart = BASE + s;
  const windowEnd = BASE + e;
  return {
    key,
    windowStart,
    windowEnd,
    value: { n } as Value,
    final,
    emitSeq,
    partition: key === "u2" ? 1 : 0,
    id: `${windowStart}:${windowEnd}:${emitSeq}:${key}`,
  } satisfies WindowResultLike<Value>;
}

function retraction(key: string, s: number, e: number, emitSeq: number): WindowResultLike<Value> {
  return { ...result(key, s, e, emitSeq, 0), value: null, retracted: true };
}

// What a session job with emit "update" writes, commit by commit:
// u1's sessions [0,1) and [20,21) merge into [0,21) (both retracted), u3's
// [20,21) grows to [20,26) (same start: retracted too), u2's stays.
const commits: WindowResultLike<Value>[][] = [
  [result("u1", 0, 1, 0, 1), result("u1", 20, 21, 0, 1), result("u2", 5, 6, 0, 1)],
  [result("u3", 20, 21, 0, 1), result("u3", 20, 21, 1, 2)],
  [
    retraction("u1", 0, 1, 1),
    retraction("u1", 20, 21, 1),
    result("u1", 0, 21, 0, 3),
    retraction("u3", 20, 21, 2),
    result("u3", 20, 26, 0, 3),
  ],
  [result("u1", 0, 21, 1, 3, true), result("u2", 5, 6, 1, 1, true)],
];
const live = [
  result("u1", 0, 21, 1, 3, true).id,
  result("u2", 5, 6, 1, 1, true).id,
  result("u3", 20, 26, 0, 3).id,
].sort();

describe.each([
  ["the ClickHouse server", "server"],
  ["embedded chDB", "chdb"],
] as const)("ClickHouse window-result table on %s", (_, engine) => {
  let exec: ClickHouseExecutor;
  let client: ClickHouseClient | undefined;
  let session: Session | undefined;
  let dir = "";
  const table = uniqueName("sinks_retract");

  afterAll(async () => {
    await exec.command(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await client?.close();
    session?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("a retraction deletes its window: the live rows are exactly the live windows, after replays too", async () => {
    if (engine === "server") {
      client = createClient({ url: env.clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });
      exec = fromClickHouseClient(client, false);
    } else {
      dir = mkdtempSync(path.join(os.tmpdir(), "sluice-sinks-retract-"));
      session = new Session(dir);
      exec = fromChdbSession(session);
    }
    const features = await detectClickHouseFeatures(exec);
    await exec.command(windowResultTableSql({ table, features }));
    // keep every emission in its own part, so FINAL (not a merge) does the collapsing
    await exec.command(`SYSTEM STOP MERGES ${table}`).catch(() => {});
    const sink = createClickHouseSink<WindowResultLike<Value>>({
      executor: exec,
      table,
      toRow: windowResultRow,
    });
    const read = async () => ({
      final: (
        await exec.queryRows<{ id: string }>(
          `SELECT id FROM (SELECT * FROM ${table} FINAL) WHERE deleted = 0 ORDER BY id`,
        )
      ).map((r) => r.id),
      finalWhere: (
        await exec.queryRows<{ id: string }>(
          `SELECT id FROM ${table} FINAL WHERE deleted = 0 ORDER BY id`,
        )
      ).map((r) => r.id),
      argMax: (
        await exec.queryRows<{ id: string }>(
          `SELECT argMax(id, emit_seq) AS id FROM ${table} GROUP BY key, window_start, window_end HAVING argMax(deleted, emit_seq) = 0 ORDER BY id`,
        )
      ).map((r) => r.id),
    });
    for (const c of commits) {
      await sink.write(c);
      await sink.flush();
    }
    expect(await read()).toEqual({ final: live, finalWhere: live, argMax: live });
    // a crash replays everything; a retraction may even arrive before what it retracts
    await sink.write(commits.flat());
    await sink.write([...commits[2]!, ...commits[0]!, ...commits[1]!]);
    await sink.flush();
    await sink.close();
    expect(await read()).toEqual({ final: live, finalWhere: live, argMax: live });
    const [gone] = await exec.queryRows<{ value: string; deleted: number; final: number }>(
      `SELECT value, deleted, final FROM (SELECT * FROM ${table} FINAL) WHERE id = '${retraction("u1", 0, 1, 1).id}'`,
    );
    expect(gone).toEqual({ value: "null", deleted: 1, final: 0 });
  });
});

describe("Redis sink applies retractions", () => {
  const redis = new Redis(env.redisUrl);
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const p of prefixes) {
      const keys = await redis.keys(`${p}*`);
      if (keys.length) await redis.del(...keys);
    }
    await redis.quit();
  });

  async function apply(
    write: RedisWrite<WindowResultLike<Value>>,
    extra: {
      key?: (r: WindowResultLike<Value>) => string;
      score?: (r: WindowResultLike<Value>) => number;
    } = {},
  ): Promise<string> {
    const keyPrefix = `${uniqueName("sluice_test_retract")}:`;
    prefixes.push(keyPrefix);
    const make = () =>
      createRedisSink<WindowResultLike<Value>>({
        url: env.redisUrl,
        keyPrefix,
        write,
        ...extra,
      });
    const sink = make();
    for (const c of commits) {
      await sink.write(c);
      await sink.flush();
    }
    await sink.close();
    // a restarted job replays every commit: the identity fences skip them all
    const again = make();
    await again.write(commits.flat());
    await again.write(commits[0]!);
    await again.close();
    return keyPrefix;
  }

  it("hash: a retraction deletes its window's hash; replays resurrect nothing", async () => {
    const p = await apply("hash", { key: (r) => `w:${r.key}:${r.windowStart}:${r.windowEnd}` });
    const keys = (await redis.keys(`${p}w:*`)).map((k) => k.slice(p.length)).sort();
    expect(keys).toEqual(
      [
        `w:u1:${BASE}:${BASE + 21}`,
        `w:u2:${BASE + 5}:${BASE + 6}`,
        `w:u3:${BASE + 20}:${BASE + 26}`,
      ].sort(),
    );
    expect(await redis.hgetall(`${p}w:u1:${BASE}:${BASE + 21}`)).toEqual({ n: "3" });
  });

  it("hash keyed by the window key: the merged session replaces the retracted one", async () => {
    const p = await apply("hash");
    expect(await redis.hgetall(`${p}u1`)).toEqual({ n: "3" });
    expect(await redis.hgetall(`${p}u3`)).toEqual({ n: "3" });
  });

  it("leaderboard: a retraction removes the member, the merged session adds it back", async () => {
    const p = await apply("leaderboard", {
      key: (r) => `board:${r.windowStart}`,
      score: (r) => (r.value as { n: number }).n,
    });
    const boards = (await redis.keys(`${p}board:*`)).map((k) => k.slice(p.length)).sort();
    expect(boards).toEqual([`board:${BASE}`, `board:${BASE + 20}`, `board:${BASE + 5}`].sort());
    expect(await redis.zrange(`${p}board:${BASE}`, 0, -1, "WITHSCORES")).toEqual(["u1", "3"]);
    expect(await redis.zrange(`${p}board:${BASE + 20}`, 0, -1, "WITHSCORES")).toEqual(["u3", "3"]);
  });

  it("stream: a retraction is passed on as it is; counter: it writes nothing", async () => {
    const p = await apply("stream");
    const entries = await redis.xrange(`${p}results`, "-", "+");
    const sent = entries.map(([, fields]) => JSON.parse(fields[1] as string) as { id: string });
    expect(sent.map((r) => r.id)).toEqual(commits.flat().map((r) => r.id));
    expect(sent.filter((r) => (r as { retracted?: boolean }).retracted)).toHaveLength(3);
    const c = await apply("counter", { key: () => "total" });
    // 9 value results of 1 each; the 3 retractions add nothing
    expect(await redis.get(`${c}total`)).toBe("9");
  });
});
