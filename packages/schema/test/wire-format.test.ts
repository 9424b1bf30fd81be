import { describe, expect, it } from "vitest";
import { frameConfluent, SchemaError, unframeConfluent } from "../src/index.js";

describe("Confluent framing", () => {
  it("frames with magic byte 0 and a big-endian 4-byte id", () => {
    const framed = frameConfluent(0x01020304, Buffer.from("{}"));
    expect([...framed]).toEqual([0, 1, 2, 3, 4, 0x7b, 0x7d]);
    const { schemaId, payload } = unframeConfluent(framed);
    expect(schemaId).toBe(0x01020304);
    expect(payload.toString()).toBe("{}");
  });

  it("SCHEMA_FRAMING_INVALID for a bad id or unframed bytes", () => {
    for (const fn of [
      () => frameConfluent(-1, Buffer.alloc(0)),
      () => frameConfluent(1.5, Buffer.alloc(0)),
      () => unframeConfluent(Buffer.from("{}")),
      () => unframeConfluent(Buffer.from([0, 1])),
    ]) {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(SchemaError.isInstance(err)).toBe(true);
      expect((err as SchemaError).code).toBe("SCHEMA_FRAMING_INVALID");
    }
  });
});
