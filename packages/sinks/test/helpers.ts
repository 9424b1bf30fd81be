import diagnostics from "node:diagnostics_channel";
import net from "node:net";
import type { WindowResultLike } from "../src/index.js";

export const env = {
  clickhouseUrl: process.env.SLUICE_CLICKHOUSE_URL ?? "http://127.0.0.1:8123",
  redisUrl: process.env.SLUICE_REDIS_URL ?? "redis://127.0.0.1:6379",
};

/** A name no other test or run uses, safe as a table, key or directory. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * An in-process TCP proxy in front of a shared service. `stop()` refuses new
 * connections and cuts open ones, as if the service were down; `start()`
 * listens again on the same port. The shared service itself is never touched.
 */
export class TcpProxy {
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  port = 0;
  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.#sockets.add(client);
      this.#sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      client.pipe(upstream);
      upstream.pipe(client);
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
    this.#sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects the sinks' `sluice:sink:retry` messages until `stop()`. */
export function onRetry(): { seen: Array<{ code: string; attempt: number }>; stop(): void } {
  const seen: Array<{ code: string; attempt: number }> = [];
  const fn = (m: unknown) => void seen.push(m as { code: string; attempt: number });
  diagnostics.subscribe("sluice:sink:retry", fn);
  return { seen, stop: () => diagnostics.unsubscribe("sluice:sink:retry", fn) };
}

/** A loopback port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Streams batches into a sink through `proxy`, cuts the proxy for `outageMs`
 * mid-stream, restores it, keeps writing until `minRecords`, then flushes.
 * Returns how many records were written in all and during the outage, and
 * the sink's backpressure and retry events seen on diagnostics_channel.
 */
export async function streamThroughOutage<R>(opts: {
  sink: { write(records: readonly R[]): Promise<void>; flush(): Promise<void> };
  /** What goes down and comes back: a {@link TcpProxy}, or a private server. */
  proxy: { stop(): Promise<void>; start(): Promise<void> };
  outageMs: number;
  record: (i: number) => R;
  minRecords?: number;
}): Promise<{ total: number; duringOutage: number; backpressure: number; retries: number }> {
  let backpressure = 0;
  let retries = 0;
  const onBuffer = (m: unknown) => {
    if ((m as { backpressure: boolean }).backpressure) backpressure++;
  };
  const onRetry = () => {
    retries++;
  };
  diagnostics.subscribe("sluice:sink:buffer", onBuffer);
  diagnostics.subscribe("sluice:sink:retry", onRetry);
  try {
    let i = 0;
    let over = false;
    const writer = (async () => {
      while (!over || i < (opts.minRecords ?? 2000)) {
        await opts.sink.write(Array.from({ length: 10 }, () => opts.record(i++)));
        await sleep(15);
      }
    })();
    await sleep(1000);
    await opts.proxy.stop();
    const atStop = i;
    await sleep(opts.outageMs);
    const duringOutage = i - atStop;
    await opts.proxy.start();
    over = true;
    await writer;
    await opts.sink.flush();
    return { total: i, duringOutage, backpressure, retries };
  } finally {
    diagnostics.unsubscribe("sluice:sink:buffer", onBuffer);
    diagnostics.unsubscribe("sluice:sink:retry", onRetry);
  }
}

/** Window result `i` (5 windows per key, count i + 1) for the ClickHouse tests. */
export function windowResultFixture(i: number, seq = 0): WindowResultLike<{ count: number }> {
  const windowStart = 1_700_000_000_000 + (i % 5) * 60_000;
  const key = `user-${Math.floor(i / 5)}`;
  return {
    key,
    windowStart,
    windowEnd: windowStart + 60_000,
    value: { count: i + 1 },
    final: true,
    emitSeq: seq,
    partition: i % 3,
    id: `${key}|${windowStart}|${windowStart + 60_000}|${seq}`,
  };
}
