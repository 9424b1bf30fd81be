import { createMetrics, createReadiness, startObservabilityServer } from "@sluice/observability";
import { Registry } from "prom-client";

/** A service's `/metrics`, `/healthz` and `/readyz` endpoint. */
export interface ServiceObservability {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the observability server of one service: a fresh prom-client
 * registry fed by every Sluice diagnostics channel, readiness from the jobs
 * and sinks, on `port` (0 picks a free one).
 *
 * @param opts - port, host and whether readiness waits for a job
 * @returns the server's URL and a close function
 */
export async function startServiceObservability(opts: {
  port: number;
  host?: string;
  requireJob: boolean;
}): Promise<ServiceObservability> {
  const registry = new Registry();
  const metrics = createMetrics({ registry, defaultMetrics: true });
  const readiness = createReadiness({ requireJob: opts.requireJob });
  const server = await startObservabilityServer({
    port: opts.port,
    host: opts.host ?? "127.0.0.1",
    registry,
    readiness,
  });
  return {
    url: server.url,
    async close() {
      await server.close();
      await readiness.close();
      await metrics.close();
    },
  };
}
