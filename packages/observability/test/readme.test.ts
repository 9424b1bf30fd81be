import { readFileSync } from "node:fs";
import { metricCatalog } from "@sluice/observability";
import { describe, expect, it } from "vitest";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("documents every metric with its type and labels", () => {
    for (const m of metricCatalog) {
      const row = readme.split("\n").find((l) => l.startsWith(`| \`sluice_${m.name}\` |`));
      expect(row, m.name).toBeDefined();
      expect(row).toContain(`| ${m.type} |`);
      for (const label of m.labelNames) expect(row).toContain(`\`${label}\``);
    }
  });

  it("documents every error code", () => {
    for (const code of [
      "OBSERVABILITY_INVALID_OPTIONS",
      "OBSERVABILITY_DUPLICATE_METRICS",
      "OBSERVABILITY_METRICS_CLOSED",
      "OBSERVABILITY_READINESS_CLOSED",
      "OBSERVABILITY_LISTEN_FAILED",
    ]) {
      expect(readme).toContain(`| \`${code}\` |`);
    }
  });
});
