import diagnostics from "node:diagnostics_channel";
import net from "node:net";

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

/**
 * Streams batches into a sink through `proxy`, cuts the proxy for `outageMs`
 * mid-stream, restores it, keeps writing until `minRecords`, then flushes.
 * Returns how many records were written in all and during the outage, and
 * the sink's backpressure and retry events seen on diagnostics_channel.
 */
export async function streamThroughOutage<R>(opts: {
  sink: { write(records: readonly R[]): Promise<void>; flush(): Promise<void> };
  proxy: TcpProxy;
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
