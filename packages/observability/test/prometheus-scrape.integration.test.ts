// A real Prometheus server (Debian package `prometheus`, where installed)
// scrapes /metrics — it asks for OpenMetrics first, so this proves the
// OpenMetrics output parses — and loads the shipped alert rules.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import diagnostics_channel from "node:diagnostics_channel";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  channels,
  createMetrics,
  createReadiness,
  startObservabilityServer,
} from "@sluice/observability";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";

const installed = spawnSync("prometheus", ["--version"]).status === 0;
// CI installs the Debian package (.ci/run); there a missing binary is a failure, not a skip.
if (!installed && process.env.CI) {
  throw new Error("prometheus is not installed; .ci/run installs the Debian package `prometheus`");
}
const rules = new URL("../../../integration/observability/sluice-alerts.rules.yml", import.meta.url)
  .pathname;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitFor<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what} ${last ? `(${String(last)})` : ""}`);
}

describe.runIf(installed)("a real Prometheus scraping /metrics", () => {
  let prom: ChildProcess | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), "sluice-prom-"));
  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once("exit", r));
      prom.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("ingests every sample over OpenMetrics and loads the alert rules", async () => {
    const registry = new Registry();
    const metrics = createMetrics({ registry, defaultMetrics: true });
    const readiness = createReadiness();
    const server = await startObservabilityServer({ port: 0, registry, readiness });
    const pub = (c: string, m: unknown) => diagnostics_channel.channel(c).publish(m);
    pub(channels.sinkBatch, { sink: "redis", name: "live", rows: 7, bytes: 70, durationMs: 3 });
    pub(channels.producerBatch, { topic: "events", messages: 10, bytes: 100, durationMs: 2 });
    pub(channels.jobStreamTime, { applicationId: "agg", partition: 0, streamTime: Date.now() });
    pub(channels.stateStats, { store: "s", keys: 1, bytes: 2, cacheHits: 3, cacheMisses: 1 });
    pub(channels.jobLate, { applicationId: "agg", count: 4 });

    const port = await freePort();
    writeFileSync(
      path.join(dir, "prometheus.yml"),
      JSON.stringify({
        global: { scrape_interval: "1s", evaluation_interval: "1s" },
        rule_files: [rules],
        scrape_configs: [
          { job_name: "sluice", static_configs: [{ targets: [new URL(server.url).host] }] },
        ],
      }),
    );
    prom = spawn(
      "prometheus",
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
    const api = async (p: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/${p}`);
      return ((await res.json()) as { data: unknown }).data;
    };
    const query = async (q: string) =>
      (await api(`query?query=${encodeURIComponent(q)}`)) as {
        result: Array<{ metric: Record<string, string>; value: [number, string] }>;
      };
    try {
      const target = await waitFor(
        async () => {
          const t = (
            (await api("targets")) as {
              activeTargets: Array<{ health: string; lastError: string }>;
            }
          ).activeTargets[0];
          return t && t.health !== "unknown" ? t : undefined;
        },
        30_000,
        "the first scrape",
      );
      expect(target).toMatchObject({ health: "up", lastError: "" });
      const rows = await waitFor(
        async () => (await query("sluice_sink_rows_total")).result[0],
        15_000,
        "sluice_sink_rows_total",
      );
      expect(rows.metric).toMatchObject({ sink: "redis", name: "live" });
      expect(rows.value[1]).toBe("7");
      expect((await query("sluice_windowing_late_records_total")).result[0]?.value[1]).toBe("4");
      // OpenMetrics writes canonical floats (le="10.0"), as client_golang does;
      // Prometheus 2.x keeps them as written, 3.x normalizes to "10".
      const bucket = await query('sluice_producer_batch_size_bucket{le=~"10|10[.]0"}');
      expect(bucket.result[0]?.value[1]).toBe("1");
      expect((await query("sluice_state_cache_hit_ratio")).result[0]?.value[1]).toBe("0.75");
      const groups = (
        (await api("rules")) as {
          groups: Array<{ rules: Array<{ name: string; health: string }> }>;
        }
      ).groups;
      const loaded = groups.flatMap((g) => g.rules);
      expect(loaded.length).toBeGreaterThanOrEqual(11);
      await waitFor(
        async () => {
          const now = (
            (await api("rules")) as { groups: Array<{ rules: Array<{ health: string }> }> }
          ).groups.flatMap((g) => g.rules);
          return now.every((r) => r.health === "ok") ? true : undefined;
        },
        15_000,
        "every rule to evaluate",
      );
    } finally {
      await server.close();
      await readiness.close();
      await metrics.close();
    }
  });
});
