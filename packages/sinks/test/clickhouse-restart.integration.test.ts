// The ClickHouse sink through a real server restart: a private 18.16 server
// (never the shared stack's) is stopped with SIGTERM while a stream of window
// results flows, stays down, and starts again on the same data. A server
// shutting down detaches its tables while it may still answer inserts on open
// connections ("unknown table", code 60), and one starting attaches them; the
// sink must ride through all of it (bounded missing-table retry, refused
// connections) and end with every row exactly once.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type PrivateClickHouse, startPrivateClickHouse } from "../../../scripts/stack.mjs";
import {
  createClickHouseSink,
  featuresOf,
  windowResultRow,
  windowResultTableSql,
} from "../src/index.js";
import {
  freePort,
  onRetry,
  windowResultFixture as result,
  streamThroughOutage,
  uniqueName,
} from "./helpers.js";

let dir = "";
let server: PrivateClickHouse | undefined;
let client: ClickHouseClient;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sinks-ch-restart-"));
  server = await startPrivateClickHouse({
    port: await freePort(),
    tcpPort: await freePort(),
    dir,
  });
  client = createClient({ url: server.url, log: { level: ClickHouseLogLevel.OFF } });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await server?.stop({ timeoutMs: 10_000 });
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

it("survives a server restart mid-stream (SIGTERM, SIGKILL after 10 s, down 3 s, start): every row exactly once", async () => {
  const table = uniqueName("sinks_restart");
  await client.command({
    query: windowResultTableSql({ table, features: featuresOf("18.16") }),
  });
  const sink = createClickHouseSink({
    url: server!.url,
    table,
    toRow: windowResultRow,
    maxBatchRows: 50,
    maxBufferedRows: 2_000,
    maxDelayMs: 50,
    retry: { initialDelayMs: 100, maxDelayMs: 1_000 },
    requestTimeoutMs: "5s",
  });
  const retries = onRetry();
  try {
    const run = await streamThroughOutage({
      sink,
      // A bounded stop: 18.16 serving open keep-alive connections may not exit by itself.
      proxy: { stop: () => server!.stop({ timeoutMs: 10_000 }), start: () => server!.restart() },
      outageMs: 3_000,
      record: (i) => result(i),
      minRecords: 3_000,
    });
    expect(run.retries).toBeGreaterThan(0);
    const [agg] = await (
      await client.query({
        query: `SELECT count() AS c, sum(visitParamExtractUInt(value, 'count')) AS s FROM \`${table}\` FINAL`,
        format: "JSONEachRow",
      })
    ).json<{ c: string; s: string }>();
    expect(Number(agg!.c)).toBe(run.total);
    expect(Number(agg!.s)).toBe((run.total * (run.total + 1)) / 2);
    const codes = [...new Set(retries.seen.map((m) => m.code))].sort();
    console.log(`retried through the restart: ${codes.join(", ")}`);
  } finally {
    retries.stop();
    await sink.close().catch(() => undefined);
  }
}, 120_000);
