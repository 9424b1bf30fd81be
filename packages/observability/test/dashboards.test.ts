import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createMetrics, metricCatalog } from "@sluice/observability";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

// The Grafana dashboard and Prometheus alert rules shipped with the suite.
const dir = new URL("../../../integration/observability/", import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL("sluice-pipeline.json", dir), "utf8"));
const rulesText = readFileSync(new URL("sluice-alerts.rules.yml", dir), "utf8");
const rules = parse(rulesText) as {
  groups: Array<{ name: string; rules: Array<Record<string, unknown> & { expr: string }> }>;
};

const registry = new Registry();
const metrics = createMetrics({ registry });
afterAll(() => metrics.close());

const types = new Map(metricCatalog.map((m) => [`sluice_${m.name}`, m.type]));

/** Every `sluice_*` series name in a PromQL expression, with the registered metric it belongs to. */
function seriesIn(expr: string): Array<{ series: string; metric: string | undefined }> {
  return [...expr.matchAll(/\bsluice_[a-zA-Z0-9_]+/g)].map(([series]) => {
    if (registry.getSingleMetric(series)) return { series, metric: series };
    const base = series.replace(/_(bucket|sum|count)$/, "");
    return { series, metric: types.get(base) === "histogram" ? base : undefined };
  });
}

function dashboardExprs(): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if ((k === "expr" || k === "definition") && typeof x === "string") out.push(x);
        else walk(x);
      }
    }
  };
  walk(dashboard);
  return out;
}
const alertExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));

function checkUsage(expr: string) {
  for (const { series, metric } of seriesIn(expr)) {
    expect(metric, `${series} in: ${expr}`).toBeDefined();
    expect(registry.getSingleMetric(metric!), series).toBeDefined();
  }
  // rate()/increase() only over counters and histogram parts; deriv()/changes() only over gauges
  for (const [, fn, series] of expr.matchAll(
    /\b(rate|increase|deriv|changes)\(\s*(sluice_[a-zA-Z0-9_]+)/g,
  )) {
    const hist = types.get(series!.replace(/_(bucket|sum|count)$/, "")) === "histogram";
    const type = hist ? "histogram" : types.get(series!);
    if (fn === "rate" || fn === "increase")
      expect(["counter", "histogram"], `${fn}(${series})`).toContain(type);
    else expect(type, `${fn}(${series})`).toBe("gauge");
  }
  for (const [, series] of expr.matchAll(
    /histogram_quantile\([^,]+,[^)]*?\((sluice_[a-zA-Z0-9_]+)/g,
  )) {
    expect(series, expr).toMatch(/_bucket$/);
  }
}

describe("Grafana dashboard", () => {
  it("is a provisionable dashboard with a stable uid and the provisioned Prometheus datasource", () => {
    expect(dashboard.uid).toBe("sluice-pipeline");
    expect(dashboard.panels.length).toBeGreaterThan(10);
    for (const p of dashboard.panels.filter((x: { type: string }) => x.type !== "row")) {
      expect(p.datasource).toEqual({ type: "prometheus", uid: "prometheus" });
      expect(p.targets.length).toBeGreaterThan(0);
    }
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("queries only metrics that createMetrics registers, with functions that fit their types", () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(30);
    for (const e of exprs) checkUsage(e);
  });
});

describe("Prometheus alert rules", () => {
  it("cover lag growth, DLQ rate, checkpoint failures, sink errors and stalled stream time", () => {
    const names = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    for (const n of [
      "SluiceConsumerLagGrowing",
      "SluiceDeadLetterRateHigh",
      "SluiceCheckpointFailures",
      "SluiceSinkErrors",
      "SluiceStreamTimeStalled",
    ]) {
      expect(names).toContain(n);
    }
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      expect(r.labels, String(r.alert)).toMatchObject({
        severity: expect.stringMatching(/^(info|warning|critical)$/),
      });
      expect(r.annotations, String(r.alert)).toMatchObject({
        summary: expect.any(String),
        description: expect.any(String),
      });
    }
  });

  it("query only metrics that createMetrics registers, with functions that fit their types", () => {
    for (const e of alertExprs) checkUsage(e);
  });

  it("together with the dashboard use every metric in the catalog", () => {
    const used = new Set(
      [...dashboardExprs(), ...alertExprs].flatMap((e) => seriesIn(e).map((s) => s.metric)),
    );
    for (const name of metrics.names) expect(used, name).toContain(name);
  });
});

// promtool ships in the Debian package `prometheus`; these checks run where it is installed.
const promtool = spawnSync("promtool", ["--version"]).status === 0;
// CI installs the Debian package (.ci/run); there a missing binary is a failure, not a skip.
if (!promtool && process.env.CI) {
  throw new Error("promtool is not installed; .ci/run installs the Debian package `prometheus`");
}
describe.runIf(promtool)("promtool", () => {
  const work = mkdtempSync(path.join(tmpdir(), "sluice-promtool-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("check rules: the alert rules are valid", () => {
    const out = execFileSync(
      "promtool",
      ["check", "rules", new URL("sluice-alerts.rules.yml", dir).pathname],
      {
        encoding: "utf8",
      },
    );
    expect(out).toContain("SUCCESS");
  });

  it("test rules: each alert fires on its situation and not on a healthy series", () => {
    const out = execFileSync("promtool", ["test", "rules", "sluice-alerts.test.yml"], {
      cwd: new URL(".", dir).pathname,
      encoding: "utf8",
    });
    expect(out).toContain("SUCCESS");
  });

  it("every dashboard query is valid PromQL", () => {
    const exprs = dashboardExprs().filter((e) => !e.startsWith("label_values("));
    const file = path.join(work, "dashboard-queries.yml");
    const doc = {
      groups: [
        {
          name: "dashboard",
          rules: exprs.map((e, i) => ({
            record: `dashboard:query_${i}`,
            expr: e.replaceAll("$__rate_interval", "5m").replaceAll("$application_id", ".*"),
          })),
        },
      ],
    };
    writeFileSync(file, JSON.stringify(doc));
    const out = execFileSync("promtool", ["check", "rules", file], { encoding: "utf8" });
    expect(out).toContain(`SUCCESS: ${exprs.length} rules found`);
  });
});
