import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { featuresOf, windowResultTableSql } from "../src/index.js";
import { env, sleep, uniqueName } from "./helpers.js";

// SIGKILL a writer process at an arbitrary instant, restart it from the last
// committed position, and compare the destination with the exact totals.
const writer = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));
const tsx = fileURLToPath(new URL("../../../node_modules/.bin/tsx", import.meta.url));
// the package's tsconfig maps @sluice/* to sources, so no build is needed
const tsconfig = fileURLToPath(new URL("../tsconfig.json", import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), "sluice-sinks-crash-"));
const TOTAL = 3000;
const expectedSum = (TOTAL * (TOTAL + 1)) / 2;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[]): { exited: Promise<number | null>; kill(): void } {
  const child = spawn(tsx, ["--tsconfig", tsconfig, writer, ...args], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return { exited, kill: () => child.kill("SIGKILL") };
}

const CRASH_AT = 1100; // flushed but not committed: the last commit is at 1000

/**
 * Runs the writer until it has flushed past its last commit, kills it at an
 * arbitrary instant shortly after (batches in flight), checks with `applied`
 * that the destination holds records beyond the commit, then restarts it from
 * the committed position.
 */
async function crashAndRestart(
  target: string,
  url: string,
  name: string,
  applied: () => Promise<number>,
): Promise<void> {
  const commitFile = path.join(dir, `${name}.commit`);
  const first = start([target, url, name, "0", String(TOTAL), commitFile, String(CRASH_AT)]);
  for (let i = 0; i < 1500 && !existsSync(`${commitFile}.flushed`); i++) await sleep(20);
  await sleep(Math.floor(Math.random() * 100));
  first.kill();
  await first.exited;
  const committed = Number(readFileSync(commitFile, "utf8"));
  expect(committed).toBe(1000);
  expect(await applied()).toBeGreaterThanOrEqual(CRASH_AT); // the replay re-sends held records
  const second = start([target, url, name, String(committed), String(TOTAL), commitFile]);
  expect(await second.exited).toBe(0);
}

describe("crash at any instant, then restart from the committed position", () => {
  it("Redis: sums and stream length are exact", async () => {
    const redis = new Redis(env.redisUrl);
    const prefix = `${uniqueName("sluice_test_crash")}:`;
    try {
      await crashAndRestart("redis", env.redisUrl, prefix, () => redis.xlen(`${prefix}log`));
      expect(Number(await redis.get(`${prefix}sum`))).toBe(expectedSum);
      expect(await redis.xlen(`${prefix}log`)).toBe(TOTAL);
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
  });

  it("ClickHouse server: window results exact with FINAL", async () => {
    const client: ClickHouseClient = createClient({
      url: env.clickhouseUrl,
      log: { level: ClickHouseLogLevel.OFF },
    });
    const table = uniqueName("sinks_crash");
    try {
      const [v] = await (
        await client.query({ query: "SELECT version() AS v", format: "JSONEachRow" })
      ).json<{ v: string }>();
      await client.command({ query: windowResultTableSql({ table, features: featuresOf(v!.v) }) });
      const totals = async () => {
        const [agg] = await (
          await client.query({
            query: `SELECT count() AS c, sum(toUInt64(value)) AS s FROM \`${table}\` FINAL`,
            format: "JSONEachRow",
          })
        ).json<{ c: string; s: string }>();
        return agg!;
      };
      await crashAndRestart("clickhouse", env.clickhouseUrl, table, async () =>
        Number((await totals()).c),
      );
      const agg = await totals();
      expect(Number(agg.c)).toBe(TOTAL);
      expect(Number(agg.s)).toBe(expectedSum);
    } finally {
      await client.command({ query: `DROP TABLE IF EXISTS \`${table}\`` });
      await client.close();
    }
  });
});
