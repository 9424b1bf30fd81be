import { SchemaError } from "@sluice/schema";
import { describe, expect, expectTypeOf, it } from "vitest";
import { generateEvents, type UserEvent } from "../src/generator/index.js";
import { UserEventCodec, type UserEventRecord } from "../src/pipeline/user-event-codec.js";

describe("UserEventCodec (the events topic schema) against the generator", () => {
  const g = generateEvents({ count: 10_000, seed: 11, invalidFraction: 0.02 });

  it("infers the generator's event type", () => {
    expectTypeOf<UserEvent>().toMatchTypeOf<UserEventRecord>();
    expectTypeOf<UserEventRecord>().toMatchTypeOf<UserEvent>();
  });

  it("round-trips every valid and late event", () => {
    for (const r of g.records) {
      if (!r.event) continue;
      expect(UserEventCodec.decode(UserEventCodec.encode(r.event))).toEqual(r.event);
    }
  });

  it("rejects every invalid record with a SchemaError, as the dead-letter path will", () => {
    const bad = g.records.filter((r) => r.kind === "invalid");
    expect(bad.length).toBeGreaterThan(100);
    const codes = new Map<string, Set<string>>();
    for (const r of bad) {
      let code = "accepted";
      try {
        UserEventCodec.decode(r.raw!);
      } catch (err) {
        expect(SchemaError.isInstance(err)).toBe(true);
        code = (err as SchemaError).code;
      }
      expect(code).not.toBe("accepted");
      const set = codes.get(r.invalidReason!) ?? new Set();
      set.add(code);
      codes.set(r.invalidReason!, set);
    }
    expect([...codes.get("not-json")!]).toEqual(["SCHEMA_DECODE_FAILED"]);
    expect([...codes.get("unknown-type")!]).toEqual(["SCHEMA_INVALID_EVENT"]);
  });
});
