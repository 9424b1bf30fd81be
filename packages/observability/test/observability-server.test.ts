import http from "node:http";
import { gunzipSync } from "node:zlib";
import {
  channels,
  createMetrics,
  createReadiness,
  type Metrics,
  type ObservabilityServer,
  type Readiness,
  startObservabilityServer,
} from "@sluice/observability";
import { type OpenMetricsContentType, Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { publish } from "./helpers.js";

let registry: Registry;
let metrics: Metrics;
let readiness: Readiness;
let server: ObservabilityServer;
let clock = 0;

beforeEach(async () => {
  clock = 5_000_000;
  registry = new Registry();
  metrics = createMetrics({ registry, now: () => clock });
  readiness = createReadiness({ sinkFailureThreshold: "5s", now: () => clock });
  server = await startObservabilityServer({ port: 0, registry, readiness });
});
afterEach(async () => {
  await server.close();
  await readiness.close();
  await metrics.close();
});

async function get(path: string, headers: Record<string, string> = {}, method = "GET") {
  const res = await fetch(server.url + path, { headers, method });
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: await res.text(),
  };
}

const PROMETHEUS_ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

describe("startObservabilityServer", () => {
  it("binds to 127.0.0.1 by default on the ephemeral port asked for", () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.port).toBeGreaterThan(0);
    expect(server.status).toBe("open");
  });

  it("/metrics serves the Prometheus text format by default", async () => {
    publish(channels.sinkBatch, { sink: "redis", name: "live", rows: 3, durationMs: 2 });
    const r = await get("/metrics");
    expect(r.status).toBe(200);
    expect(r.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(r.body).toContain("# TYPE sluice_sink_rows_total counter");
    expect(r.body).toContain('sluice_sink_rows_total{sink="redis",name="live"} 3');
    expect(r.body).toContain(
      'sluice_sink_batch_duration_seconds_bucket{le="0.0025",sink="redis",name="live"} 1',
    );
    expect(r.body).not.toContain("# EOF");
  });

  it("/metrics serves OpenMetrics when the scraper prefers it (as Prometheus does)", async () => {
    publish(channels.sinkBatch, { sink: "redis", name: "live", rows: 3, durationMs: 2 });
    const r = await get("/metrics", { accept: PROMETHEUS_ACCEPT });
    expect(r.status).toBe(200);
    expect(r.type).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
    expect(r.body).toContain("# TYPE sluice_sink_rows counter");
    expect(r.body).toContain('sluice_sink_rows_total{sink="redis",name="live"} 3');
    expect(r.body).toContain(
      'sluice_sink_batch_duration_seconds_bucket{le="1.0",sink="redis",name="live"} 1',
    );
    expect(r.body.endsWith("# EOF\n")).toBe(true);
    // the registry is untouched: the next plain scrape still has the counter's full name
    const plain = await get("/metrics", { accept: "text/plain" });
    expect(plain.body).toContain("# TYPE sluice_sink_rows_total counter");
    // text/plain preferred over OpenMetrics
    const pref = await get("/metrics", {
      accept: "application/openmetrics-text;q=0.3, text/plain",
    });
    expect(pref.type).toMatch(/^text\/plain/);
  });

  it("a registry created in OpenMetrics mode still serves both formats, unchanged", async () => {
    const omRegistry = new Registry<OpenMetricsContentType>();
    omRegistry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const m = createMetrics({ registry: omRegistry, prefix: "om_" });
    const s = await startObservabilityServer({ port: 0, registry: omRegistry });
    publish(channels.jobLate, { applicationId: "agg", count: 2 });
    for (let i = 0; i < 2; i++) {
      const text = await (
        await fetch(`${s.url}/metrics`, { headers: { accept: "text/plain" } })
      ).text();
      expect(text).toContain("# TYPE om_windowing_late_records_total counter");
      expect(text).toContain('om_windowing_late_records_total{application_id="agg"} 2');
      const om = await (
        await fetch(`${s.url}/metrics`, { headers: { accept: PROMETHEUS_ACCEPT } })
      ).text();
      expect(om).toContain("# TYPE om_windowing_late_records counter");
      expect(om).toContain('om_windowing_late_records_total{application_id="agg"} 2');
    }
    expect(omRegistry.getSingleMetric("om_windowing_late_records_total")).toBeDefined();
    await s.close();
    await m.close();
  });

  it("/metrics is gzipped when the scraper accepts it, plain otherwise", async () => {
    publish(channels.jobLate, { applicationId: "agg", count: 1 });
    const raw = (encoding?: string) =>
      new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        http
          .get(
            `${server.url}/metrics`,
            { headers: encoding ? { "accept-encoding": encoding } : {} },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (c: Buffer) => chunks.push(c));
              res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
            },
          )
          .on("error", reject);
      });
    const zipped = await raw("gzip, deflate");
    expect(zipped.headers["content-encoding"]).toBe("gzip");
    expect(Number(zipped.headers["content-length"])).toBe(zipped.body.length);
    expect(gunzipSync(zipped.body).toString()).toContain(
      'sluice_windowing_late_records_total{application_id="agg"} 1',
    );
    const plain = await raw();
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.toString()).toContain(
      'sluice_windowing_late_records_total{application_id="agg"} 1',
    );
  });

  it("close() cuts a request still running after closeTimeout", async () => {
    const stuck = await startObservabilityServer({
      port: 0,
      registry,
      readiness: () => new Promise(() => {}), // never answers
      closeTimeout: 200,
    });
    const inflight = fetch(`${stuck.url}/readyz`).then(
      () => "answered",
      () => "cut",
    );
    await new Promise((r) => setTimeout(r, 50));
    await stuck.close();
    expect(stuck.status).toBe("closed");
    expect(await inflight).toBe("cut");
  });

  it("/healthz is 200 while open", async () => {
    const r = await get("/healthz");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ ok: true });
  });

  it("/readyz follows job readiness and sink failures", async () => {
    expect((await get("/readyz")).status).toBe(503);
    publish(channels.jobRebalance, { applicationId: "agg", assigned: [0], revoked: [] });
    expect((await get("/readyz")).status).toBe(503);
    publish(channels.jobReady, { applicationId: "agg", ready: true });
    const ok = await get("/readyz");
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).ok).toBe(true);
    publish(channels.sinkBatch, {
      sink: "clickhouse",
      name: "events",
      rows: 1,
      durationMs: 1,
      error: new Error("down"),
    });
    clock += 6_000;
    const down = await get("/readyz");
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).detail.reasons[0]).toContain(
      "sink clickhouse:events has been failing",
    );
    publish(channels.sinkBatch, { sink: "clickhouse", name: "events", rows: 1, durationMs: 1 });
    expect((await get("/readyz")).status).toBe(200);
  });

  it("a throwing readiness check is a 503 with the error, not a crash", async () => {
    const s = await startObservabilityServer({
      port: 0,
      registry,
      readiness: () => {
        throw new Error("probe exploded");
      },
    });
    const res = await fetch(`${s.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, detail: { error: "probe exploded" } });
    await s.close();
  });

  it("exposes nothing else: 404 for other paths, 405 for other methods, HEAD without body", async () => {
    expect((await get("/")).status).toBe(404);
    expect((await get("/debug/pprof")).status).toBe(404);
    expect((await get("/metrics/../etc/passwd")).status).toBe(404);
    const post = await get("/metrics", {}, "POST");
    expect(post.status).toBe(405);
    const head = await get("/metrics", {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect((await get("/metrics?x=1")).status).toBe(200);
  });

  it("close() lets an in-flight request finish, then refuses connections; idempotent", async () => {
    let release!: () => void;
    const slow = await startObservabilityServer({
      port: 0,
      registry,
      readiness: () =>
        new Promise((resolve) => {
          release = () => resolve({ ok: true });
        }),
    });
    const inflight = fetch(`${slow.url}/readyz`);
    while (!release) await new Promise((r) => setTimeout(r, 5));
    const closing = slow.close();
    expect(slow.status).toBe("closing");
    release();
    expect((await inflight).status).toBe(200);
    await closing;
    await slow.close();
    await slow[Symbol.asyncDispose]();
    expect(slow.status).toBe("closed");
    await expect(fetch(`${slow.url}/healthz`)).rejects.toThrow();
  });

  it("close() cuts idle keep-alive connections instead of waiting for them", async () => {
    const agent = new http.Agent({ keepAlive: true });
    const s = await startObservabilityServer({ port: 0, registry, closeTimeout: "60s" });
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${s.url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        })
        .on("error", reject);
    });
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(30_000);
    agent.destroy();
  });

  it("rejects a busy port with OBSERVABILITY_LISTEN_FAILED (retryable)", async () => {
    await expect(startObservabilityServer({ port: server.port, registry })).rejects.toMatchObject({
      code: "OBSERVABILITY_LISTEN_FAILED",
      retryable: true,
    });
  });

  it("validates options", async () => {
    await expect(startObservabilityServer({ port: -1, registry })).rejects.toMatchObject({
      code: "OBSERVABILITY_INVALID_OPTIONS",
    });
    await expect(
      startObservabilityServer({ port: 0, registry: {} as never }),
    ).rejects.toMatchObject({
      code: "OBSERVABILITY_INVALID_OPTIONS",
    });
    await expect(
      startObservabilityServer({ port: 0, registry, readiness: 42 as never }),
    ).rejects.toMatchObject({ code: "OBSERVABILITY_INVALID_OPTIONS" });
  });
});
