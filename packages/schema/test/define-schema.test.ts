import { describe, expect, expectTypeOf, it } from "vitest";
import {
  defineSchema,
  frameConfluent,
  SchemaError,
  type SchemaType,
  SluiceError,
  schemaFingerprint,
} from "../src/index.js";
import { UserEvent, userEventSchema, validEvent } from "./sample-events.js";

function caught(fn: () => unknown): SchemaError {
  try {
    fn();
  } catch (err) {
    expect(SchemaError.isInstance(err)).toBe(true);
    expect(SluiceError.isInstance(err)).toBe(true);
    return err as SchemaError;
  }
  throw new Error("expected a SchemaError");
}

describe("defineSchema", () => {
  it("infers the event type from the schema", () => {
    type E = SchemaType<typeof UserEvent>;
    expectTypeOf<E["user_id"]>().toEqualTypeOf<string>();
    expectTypeOf<E["ts"]>().toEqualTypeOf<number>();
    expectTypeOf<E["event_type"]>().toEqualTypeOf<"page_view" | "click" | "purchase">();
    expectTypeOf<E["page"]>().toEqualTypeOf<string | undefined>();
    // @ts-expect-error: 'nope' is not an allowed event_type
    const bad: E = { user_id: "u", event_type: "nope", ts: 1 };
    expect(bad).toBeDefined();
  });

  it("encodes to plain JSON and decodes back", () => {
    const bytes = UserEvent.encode(validEvent);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(JSON.parse(bytes.toString("utf8"))).toEqual(validEvent);
    expect(UserEvent.decode(bytes)).toEqual(validEvent);
    expect(UserEvent.decode(bytes.toString("utf8"))).toEqual(validEvent);
    expect(UserEvent.decode(new Uint8Array(bytes))).toEqual(validEvent);
    expect(UserEvent.subject).toBe("user-event");
    expect(UserEvent.jsonSchema).toBe(userEventSchema);
    expect(UserEvent.id).toBeUndefined();
  });

  it("decodes a Uint8Array view into a larger buffer", () => {
    const bytes = UserEvent.encode(validEvent);
    const big = Buffer.concat([Buffer.from("xxxx"), bytes, Buffer.from("yyyy")]);
    expect(UserEvent.decode(big.subarray(4, 4 + bytes.length))).toEqual(validEvent);
  });

  it("accepts Confluent-framed bytes in decode", () => {
    const framed = frameConfluent(7, UserEvent.encode(validEvent));
    expect(UserEvent.decode(framed)).toEqual(validEvent);
  });

  it("validate is a type guard and check lists issues", () => {
    expect(UserEvent.validate(validEvent)).toBe(true);
    expect(UserEvent.validate({ user_id: "u" })).toBe(false);
    expect(UserEvent.check(validEvent)).toEqual([]);
    const issues = UserEvent.check({ user_id: 5 });
    expect(issues.map((i) => i.keyword).sort()).toEqual(["required", "required", "type"]);
  });

  it("SCHEMA_INVALID_EVENT carries every ajv error and the offending value", () => {
    const value = { user_id: "", event_type: "nope", ts: -1, extra: true };
    const err = caught(() => UserEvent.encode(value as never));
    expect(err.code).toBe("SCHEMA_INVALID_EVENT");
    expect(err.value).toBe(value);
    expect(err.subject).toBe("user-event");
    const paths = err.errors.map((e) => `${e.path}:${e.keyword}`).sort();
    expect(paths).toEqual([
      "/event_type:enum",
      "/ts:minimum",
      "/user_id:minLength",
      ":additionalProperties",
    ]);
    expect(err.message).toContain("/event_type");
    expect(err.message).toContain('"nope"');
    expect(err.retryable).toBe(false);

    const err2 = caught(() => UserEvent.decode('{"user_id":"u","event_type":"click"}'));
    expect(err2.code).toBe("SCHEMA_INVALID_EVENT");
    expect(err2.errors[0]?.params).toEqual({ missingProperty: "ts" });
    expect(err2.value).toEqual({ user_id: "u", event_type: "click" });
  });

  it("checks formats (ajv-formats)", () => {
    expect(UserEvent.validate({ ...validEvent, at: "2024-01-01T00:00:00Z" })).toBe(true);
    expect(UserEvent.validate({ ...validEvent, at: "yesterday" })).toBe(false);
  });

  it("SCHEMA_DECODE_FAILED for bytes that are not JSON", () => {
    const err = caught(() => UserEvent.decode(Buffer.from("{not json")));
    expect(err.code).toBe("SCHEMA_DECODE_FAILED");
    expect(err.value).toBe("{not json");
    expect(err.cause).toBeInstanceOf(SyntaxError);
    expect(caught(() => UserEvent.decode(42 as never)).code).toBe("SCHEMA_DECODE_FAILED");
  });

  it("refuses prototype-poisoning keys without polluting anything", () => {
    const poisoned = [
      '{"user_id":"u","event_type":"click","ts":1,"__proto__":{"polluted":true}}',
      '{"user_id":"u","event_type":"click","ts":1,"props":{"__proto__":{"polluted":true}}}',
      '{"user_id":"u","event_type":"click","ts":1,"constructor":{"prototype":{"polluted":true}}}',
      '{"user_id":"u","event_type":"click","ts":1,"\\u005f_proto__":{"polluted":true}}',
    ];
    const loose = defineSchema({ subject: "loose", schema: { type: "object" } });
    for (const text of poisoned) {
      expect(caught(() => UserEvent.decode(text)).code).toBe("SCHEMA_DECODE_FAILED");
      expect(caught(() => loose.decode(text)).code).toBe("SCHEMA_DECODE_FAILED");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // a plain property named "constructor" without prototype is ordinary data
    expect(loose.decode('{"constructor":"x"}')).toEqual({ constructor: "x" });
  });

  it("SCHEMA_EVENT_TOO_LARGE on both sides", () => {
    const Small = defineSchema({
      subject: "small",
      schema: userEventSchema,
      maxEventBytes: 100,
    });
    const big = { ...validEvent, page: "x".repeat(200) };
    const err = caught(() => Small.encode(big));
    expect(err.code).toBe("SCHEMA_EVENT_TOO_LARGE");
    expect(err.message).toContain("maxEventBytes 100");
    const bytes = UserEvent.encode(big);
    expect(caught(() => Small.decode(bytes)).code).toBe("SCHEMA_EVENT_TOO_LARGE");
    expect(caught(() => Small.decode(bytes.toString())).code).toBe("SCHEMA_EVENT_TOO_LARGE");
    expect(Small.encode(validEvent).length).toBeLessThanOrEqual(100);
  });

  it("SCHEMA_INVALID_DEFINITION for schemas strict mode rejects and bad options", () => {
    expect(
      caught(() => defineSchema({ subject: "s", schema: { type: "object", nope: 1 } as never }))
        .code,
    ).toBe("SCHEMA_INVALID_DEFINITION");
    expect(
      caught(() => defineSchema({ subject: "s", schema: { type: "string", format: "wat" } })).code,
    ).toBe("SCHEMA_INVALID_DEFINITION");
    expect(caught(() => defineSchema({ subject: "", schema: { type: "string" } })).code).toBe(
      "SCHEMA_INVALID_DEFINITION",
    );
    expect(
      caught(() => defineSchema({ subject: "s", schema: { type: "string" }, maxEventBytes: 0 }))
        .code,
    ).toBe("SCHEMA_INVALID_DEFINITION");
    expect(caught(() => defineSchema({ subject: "s", schema: null as never })).code).toBe(
      "SCHEMA_INVALID_DEFINITION",
    );
  });

  it("two schemas with the same $id do not collide", () => {
    const a = defineSchema({ subject: "a", schema: userEventSchema });
    const b = defineSchema({ subject: "b", schema: userEventSchema });
    expect(a.validate(validEvent) && b.validate(validEvent)).toBe(true);
  });

  it("fingerprint ignores key order and changes with content", () => {
    expect(schemaFingerprint({ a: 1, b: { c: 2, d: 3 } })).toBe(
      schemaFingerprint({ b: { d: 3, c: 2 }, a: 1 }),
    );
    expect(schemaFingerprint({ a: 1 })).not.toBe(schemaFingerprint({ a: 2 }));
    expect(UserEvent.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });
});
