import { describe, expect, it } from "vitest";
import { checkCompatibility, type JsonSchemaObject } from "../src/index.js";

const v1 = {
  type: "object",
  properties: {
    user_id: { type: "string" },
    event_type: { type: "string", enum: ["click", "view", "buy"] },
    ts: { type: "integer" },
    amount: { type: "number" },
  },
  required: ["user_id", "event_type", "ts"],
} as const satisfies JsonSchemaObject;

function variant(patch: (s: Record<string, any>) => void): JsonSchemaObject {
  const s = structuredClone(v1) as Record<string, any>;
  patch(s);
  return s as JsonSchemaObject;
}

const kinds = (prev: JsonSchemaObject, next: JsonSchemaObject, mode = "BACKWARD" as const) =>
  checkCompatibility(prev, next, mode).changes.map((c) => `${c.path} ${c.kind}`);

describe("checkCompatibility", () => {
  it("identical schemas are compatible in every mode", () => {
    for (const mode of ["BACKWARD", "FORWARD", "FULL", "NONE"] as const) {
      expect(checkCompatibility(v1, v1, mode)).toEqual({ compatible: true, changes: [] });
    }
  });

  it("adding an optional property is compatible (BACKWARD and FULL)", () => {
    const next = variant((s) => {
      s.properties.page = { type: "string" };
    });
    expect(checkCompatibility(v1, next).compatible).toBe(true);
    expect(checkCompatibility(v1, next, "FULL").compatible).toBe(true);
  });

  it("removing a required property is breaking", () => {
    const next = variant((s) => {
      delete s.properties.ts;
      s.required = ["user_id", "event_type"];
    });
    expect(kinds(v1, next)).toEqual(["/properties/ts required-property-removed"]);
    expect(checkCompatibility(v1, next, "FORWARD").changes.map((c) => c.kind)).toEqual([
      "required-added",
    ]);
  });

  it("tightening a type is breaking; widening integer to number is not (BACKWARD)", () => {
    const tighter = variant((s) => {
      s.properties.amount = { type: "integer" };
    });
    expect(kinds(v1, tighter)).toEqual(["/properties/amount/type type-narrowed"]);
    const wider = variant((s) => {
      s.properties.ts = { type: "number" };
    });
    expect(checkCompatibility(v1, wider).compatible).toBe(true);
    // but old readers cannot read the wider values
    expect(kinds(v1, wider, "FORWARD" as never)).toEqual(["/properties/ts/type type-narrowed"]);
  });

  it("removing an enum value is breaking; adding one is BACKWARD-compatible only", () => {
    const fewer = variant((s) => {
      s.properties.event_type.enum = ["click", "view"];
    });
    const r = checkCompatibility(v1, fewer);
    expect(r.compatible).toBe(false);
    expect(r.changes[0]).toMatchObject({
      path: "/properties/event_type/enum",
      kind: "enum-value-removed",
      breaks: "BACKWARD",
    });
    expect(r.changes[0]!.message).toContain('"buy"');
    const more = variant((s) => {
      s.properties.event_type.enum = ["click", "view", "buy", "refund"];
    });
    expect(checkCompatibility(v1, more).compatible).toBe(true);
    expect(checkCompatibility(v1, more, "FULL").compatible).toBe(false);
  });

  it("making an optional property required, tightening bounds, closing the object: each listed", () => {
    const next = variant((s) => {
      s.required.push("amount");
      s.properties.amount.minimum = 0;
      s.properties.user_id.maxLength = 10;
      s.additionalProperties = false;
    });
    expect(kinds(v1, next).sort()).toEqual(
      [
        "/required required-added",
        "/properties/amount/minimum bound-tightened",
        "/properties/user_id/maxLength bound-tightened",
        "/additionalProperties content-model-closed",
      ].sort(),
    );
  });

  it("NONE accepts anything", () => {
    expect(checkCompatibility(v1, { type: "string" }, "NONE").compatible).toBe(true);
  });

  it("recurses into nested objects and arrays", () => {
    const a = {
      type: "object",
      properties: { tags: { type: "array", items: { type: "string" } } },
    } as const;
    const b = {
      type: "object",
      properties: { tags: { type: "array", items: { type: "string", enum: ["x"] } } },
    } as const;
    expect(kinds(a, b)).toEqual(["/properties/tags/items/enum enum-added"]);
  });
});
