// /readyz turns not ready while a real ClickHouse or Redis sink cannot reach
// its server, and ready again once it can: the server sits behind a TCP
// proxy that the test stops and restarts.
import net from "node:net";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { createMetrics, createReadiness, startObservabilityServer } from "@sluice/observability";
import { createClickHouseSink, createRedisSink } from "@sluice/sinks";
import { Redis } from "ioredis";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { metricTotal } from "./helpers.js";

const clickhouseUrl = process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const redisUrl = process.env.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379";
const unique = `obs_ready_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
const table = unique;
const client = createClient({ url: clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });
const redis = new Redis(redisUrl, { lazyConnect: true });

/** Forwards loopback connections to ClickHouse until stopped. */
class TcpProxy {
  constructor(readonly target: URL) {}
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  port = 0;
  async start(): Promise<void> {
    const server = net.createServer((c) => {
      const up = net.connect(Number(this.target.port), this.target.hostname);
      for (const s of [c, up]) {
        this.#sockets.add(s);
        s.on("error", () => {}).on("close", () => {
          c.destroy();
          up.destroy();
          this.#sockets.delete(s);
        });
      }
      c.pipe(up);
      up.pipe(c);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const proxies: TcpProxy[] = [];
function proxyTo(url: string, defaultPort: number): TcpProxy {
  const target = new URL(url);
  if (!target.port) target.port = String(defaultPort);
  const p = new TcpProxy(target);
  proxies.push(p);
  return p;
}
afterAll(async () => {
  for (const p of proxies) await p.stop();
  await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
  await client.close();
  const keys = await redis.keys(`${unique}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

interface Rec {
  id: string;
  key: string;
  value: number;
  partition: number;
  offset: number;
}
const rec = (i: number): Rec => ({
  id: `r${i}`,
  key: `k${i % 3}`,
  value: 1,
  partition: 0,
  offset: i,
});

interface Case {
  kind: "clickhouse" | "redis";
  proxy: TcpProxy;
  setup(): Promise<void>;
  makeSink(port: number): {
    write(r: readonly Rec[]): Promise<void>;
    flush(): Promise<void>;
    close(): Promise<void>;
  };
  /** Records stored at the destination. */
  stored(): Promise<number>;
}

const cases: Case[] = [
  {
    kind: "clickhouse",
    proxy: proxyTo(clickhouseUrl, 8123),
    async setup() {
      await client.command({
        query: `CREATE TABLE ${table} (id String, key String, value UInt32) ENGINE = MergeTree ORDER BY id`,
      });
    },
    makeSink: (port) =>
      createClickHouseSink<Rec>({
        url: `http://127.0.0.1:${port}`,
        table,
        name: "obs-ready",
        toRow: (r) => ({ id: r.id, key: r.key, value: r.value }),
        maxDelayMs: 20,
        requestTimeoutMs: "2s",
        retry: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: 10_000 },
      }),
    async stored() {
      const rows = await (
        await client.query({ query: `SELECT count() AS c FROM ${table}`, format: "JSONEachRow" })
      ).json<{ c: string }>();
      return Number(rows[0]?.c);
    },
  },
  {
    kind: "redis",
    proxy: proxyTo(redisUrl, 6379),
    async setup() {
      await redis.connect();
    },
    makeSink: (port) =>
      createRedisSink<Rec>({
        url: `redis://127.0.0.1:${port}`,
        keyPrefix: `${unique}:`,
        name: "obs-ready",
        write: "counter",
        maxDelayMs: 20,
        retry: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: 10_000 },
      }),
    async stored() {
      let sum = 0;
      for (const k of ["k0", "k1", "k2"]) sum += Number((await redis.get(`${unique}:${k}`)) ?? 0);
      return sum;
    },
  },
];

describe.each(cases)("/readyz with a real $kind sink", (c) => {
  it("turns not ready while the sink's server is down and ready again after", async () => {
    await c.setup();
    await c.proxy.start();
    const registry = new Registry();
    const metrics = createMetrics({ registry });
    const readiness = createReadiness({ requireJob: false, sinkFailureThreshold: "1s" });
    const server = await startObservabilityServer({ port: 0, registry, readiness });
    const sink = c.makeSink(c.proxy.port);
    const readyz = async () => {
      const res = await fetch(`${server.url}/readyz`);
      return { status: res.status, body: (await res.json()) as { detail: { reasons: string[] } } };
    };
    const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
    const labels = { sink: c.kind, name: "obs-ready" };
    try {
      await sink.write(Array.from({ length: 10 }, (_, i) => rec(i)));
      await sink.flush();
      expect((await readyz()).status).toBe(200);

      await c.proxy.stop(); // the server is unreachable
      await sink.write(Array.from({ length: 5 }, (_, i) => rec(10 + i)));
      const flushed = sink.flush();
      await waitFor(
        async () => (await readyz()).status === 503,
        30_000,
        "/readyz to turn not ready",
      );
      const down = await readyz();
      expect(down.body.detail.reasons.join(" ")).toContain(
        `sink ${c.kind}:obs-ready has been failing`,
      );
      const during = await scrape();
      expect(metricTotal(during, "sluice_sink_failing_seconds", labels)).toBeGreaterThan(1);
      expect(metricTotal(during, "sluice_sink_retries_total", labels)).toBeGreaterThan(0);

      await c.proxy.start(); // back, on the same port
      await flushed;
      expect((await readyz()).status).toBe(200);
      const after = await scrape();
      expect(metricTotal(after, "sluice_sink_rows_total", labels)).toBe(15);
      expect(metricTotal(after, "sluice_sink_failing_seconds", labels)).toBe(0);
      expect(await c.stored()).toBe(15);
    } finally {
      await sink.close();
      await server.close();
      await readiness.close();
      await metrics.close();
    }
  });
});
