import { describe, expect, it } from "vitest";
import { parseDuration, SluiceError } from "../src/index.js";

describe("parseDuration", () => {
  it("accepts milliseconds and unit strings", () => {
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("42")).toBe(42);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY, "soon", "", "-5m"])(
    "rejects %s with INVALID_DURATION naming the option",
    (bad) => {
      let caught: unknown;
      try {
        parseDuration(bad as never, "graceMs");
      } catch (err) {
        caught = err;
      }
      expect(SluiceError.isInstance(caught)).toBe(true);
      expect((caught as SluiceError).code).toBe("INVALID_DURATION");
      expect((caught as SluiceError).message).toContain("graceMs");
    },
  );
});

describe("SluiceError", () => {
  it("carries code, cause and retryable, and is recognised by brand", () => {
    const cause = new Error("socket hang up");
    const err = new SluiceError("X_FAILED", "x failed", { cause, retryable: true });
    expect(err.code).toBe("X_FAILED");
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(true);
    expect(SluiceError.isInstance(err)).toBe(true);
    expect(SluiceError.isInstance(new Error("plain"))).toBe(false);
    expect(SluiceError.isInstance({ code: "X" })).toBe(false);
  });
});
