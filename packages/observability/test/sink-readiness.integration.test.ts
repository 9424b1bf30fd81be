// /readyz turns not ready while a real ClickHouse sink cannot reach its
// server, and ready again once it can: the server sits behind a TCP proxy
// that the test stops and restarts.
import net from "node:net";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { createMetrics, createReadiness, startObservabilityServer } from "@sluice/observability";
import { createClickHouseSink } from "@sluice/sinks";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";

const clickhouseUrl = process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123";
const target = new URL(clickhouseUrl);
const table = `obs_ready_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
const client = createClient({ url: clickhouseUrl, log: { level: ClickHouseLogLevel.OFF } });

/** Forwards loopback connections to ClickHouse until stopped. */
class TcpProxy {
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  port = 0;
  async start(): Promise<void> {
    const server = net.createServer((c) => {
      const up = net.connect(Number(target.port || 8123), target.hostname);
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

const proxy = new TcpProxy();
afterAll(async () => {
  await proxy.stop();
  await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
  await client.close();
});

describe("/readyz with a real ClickHouse sink", () => {
  it("turns not ready while the sink's server is down and ready again after", async () => {
    await client.command({
      query: `CREATE TABLE ${table} (id String, n UInt32) ENGINE = MergeTree ORDER BY id`,
    });
    await proxy.start();
    const registry = new Registry();
    const metrics = createMetrics({ registry });
    const readiness = createReadiness({ requireJob: false, sinkFailureThreshold: "1s" });
    const server = await startObservabilityServer({ port: 0, registry, readiness });
    const sink = createClickHouseSink<{ id: string; n: number }>({
      url: `http://127.0.0.1:${proxy.port}`,
      table,
      name: "obs-ready",
      maxDelayMs: 20,
      requestTimeoutMs: "2s",
      retry: { initialDelayMs: 100, maxDelayMs: 300, maxAttempts: 10_000 },
    });
    const readyz = async () => {
      const res = await fetch(`${server.url}/readyz`);
      return { status: res.status, body: (await res.json()) as { detail: { reasons: string[] } } };
    };
    const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
    const value = (text: string, series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(series));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    try {
      await sink.write(Array.from({ length: 10 }, (_, i) => ({ id: `a${i}`, n: i })));
      await sink.flush();
      expect((await readyz()).status).toBe(200);

      await proxy.stop(); // ClickHouse unreachable
      await sink.write(Array.from({ length: 5 }, (_, i) => ({ id: `b${i}`, n: i })));
      const flushed = sink.flush();
      await waitFor(
        async () => (await readyz()).status === 503,
        30_000,
        "/readyz to turn not ready",
      );
      const down = await readyz();
      expect(down.body.detail.reasons.join(" ")).toMatch(
        /sink clickhouse:obs-ready has been failing/,
      );
      const during = await scrape();
      expect(
        value(during, 'sluice_sink_failing_seconds{sink="clickhouse",name="obs-ready"}'),
      ).toBeGreaterThan(1);
      expect(during).toMatch(
        /sluice_sink_retries_total\{sink="clickhouse",name="obs-ready",code="[^"]+"\} [1-9]/,
      );

      await proxy.start(); // back, on the same port
      await flushed;
      expect((await readyz()).status).toBe(200);
      const after = await scrape();
      expect(value(after, 'sluice_sink_rows_total{sink="clickhouse",name="obs-ready"}')).toBe(15);
      expect(value(after, 'sluice_sink_failing_seconds{sink="clickhouse",name="obs-ready"}')).toBe(
        0,
      );
      const [{ c }] = (await (
        await client.query({ query: `SELECT count() AS c FROM ${table}`, format: "JSONEachRow" })
      ).json<{ c: string }>()) as [{ c: string }];
      expect(Number(c)).toBe(15);
    } finally {
      await sink.close();
      await server.close();
      await readiness.close();
      await metrics.close();
    }
  });
});
