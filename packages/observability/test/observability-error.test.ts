import {
  createMetrics,
  createReadiness,
  ObservabilityError,
  type ObservabilityErrorCode,
  startObservabilityServer,
} from "@sluice/observability";
import { SluiceError } from "@sluice/schema";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (err) {
    expect(SluiceError.isInstance(err)).toBe(true);
    expect(ObservabilityError.isInstance(err)).toBe(true);
    return (err as ObservabilityError).code;
  }
  return undefined;
}

describe("ObservabilityError", () => {
  it("is a branded SluiceError with a stable code", () => {
    const e = new ObservabilityError("OBSERVABILITY_INVALID_OPTIONS", "bad", {
      cause: new Error("x"),
    });
    expect(e.name).toBe("ObservabilityError");
    expect(e.retryable).toBe(false);
    expect(e.cause).toBeInstanceOf(Error);
    expect(ObservabilityError.isInstance(new SluiceError("SCHEMA_INVALID_EVENT", "x"))).toBe(false);
    expect(ObservabilityError.isInstance(new Error("x"))).toBe(false);
  });

  const cases: Record<ObservabilityErrorCode, () => unknown> = {
    OBSERVABILITY_INVALID_OPTIONS: () =>
      createMetrics({ registry: new Registry(), prefix: "has space" }),
    OBSERVABILITY_DUPLICATE_METRICS: () => {
      const registry = new Registry();
      createMetrics({ registry, prefix: "dup_" });
      try {
        createMetrics({ registry, prefix: "dup_" });
      } finally {
        for (const m of registry.getMetricsAsArray()) registry.removeSingleMetric(m.name);
      }
    },
    OBSERVABILITY_METRICS_CLOSED: async () => {
      const m = createMetrics({ registry: new Registry() });
      await m.close();
      m.reset();
    },
    OBSERVABILITY_READINESS_CLOSED: async () => {
      const r = createReadiness();
      await r.close();
      r.check();
    },
    OBSERVABILITY_LISTEN_FAILED: async () => {
      const registry = new Registry();
      const a = await startObservabilityServer({ port: 0, registry });
      try {
        await startObservabilityServer({ port: a.port, registry });
      } finally {
        await a.close();
      }
    },
  };
  for (const [code, fn] of Object.entries(cases)) {
    it(`code ${code}`, async () => {
      expect(await codeOf(fn)).toBe(code);
    });
  }

  it("createMetrics validates each option", async () => {
    const registry = new Registry();
    expect(await codeOf(() => createMetrics(undefined as never))).toBe(
      "OBSERVABILITY_INVALID_OPTIONS",
    );
    expect(await codeOf(() => createMetrics({} as never))).toBe("OBSERVABILITY_INVALID_OPTIONS");
    expect(await codeOf(() => createMetrics({ registry, maxLabelValues: 0 }))).toBe(
      "OBSERVABILITY_INVALID_OPTIONS",
    );
    expect(await codeOf(() => createMetrics({ registry, now: 5 as never }))).toBe(
      "OBSERVABILITY_INVALID_OPTIONS",
    );
    expect(await codeOf(() => createMetrics({ registry, defaultMetrics: "y" as never }))).toBe(
      "OBSERVABILITY_INVALID_OPTIONS",
    );
    expect(registry.getMetricsAsArray()).toEqual([]);
  });
});
