// Hostile input: whatever bytes arrive in a record, `decode` either returns a
// schema-valid event or throws a coded SchemaError (which the job turns into a
// dead-letter record with its reason). It never throws anything else, never
// pollutes prototypes and never returns altered text. 100,000+ generated cases.
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { defineSchema, SchemaError } from "../src/index.js";
import { UserEvent, validEvent } from "./sample-events.js";

const DECODE_CODES = new Set([
  "SCHEMA_DECODE_FAILED",
  "SCHEMA_INVALID_EVENT",
  "SCHEMA_EVENT_TOO_LARGE",
  "SCHEMA_FRAMING_INVALID",
]);

type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

/** Decodes and classifies; any throw that is not a coded SchemaError fails the property. */
function decodeOutcome(input: Uint8Array | string, codec = UserEvent): Outcome {
  try {
    return { ok: true, value: codec.decode(input) };
  } catch (err) {
    if (!SchemaError.isInstance(err)) {
      throw new Error(`decode threw a non-SchemaError: ${String(err)}`, { cause: err });
    }
    if (!DECODE_CODES.has(err.code)) throw new Error(`unexpected code ${err.code}`);
    return { ok: false, code: err.code };
  }
}

function expectAccepted(outcome: Outcome) {
  if (outcome.ok) expect(UserEvent.validate(outcome.value)).toBe(true);
}

const validJson = Buffer.from(JSON.stringify(validEvent));
const hostileKeys = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"];

afterAll(() => {
  // Nothing the fuzzer fed in may have reached Object.prototype.
  const probe = {} as Record<string, unknown>;
  for (const k of ["polluted", "x", "isAdmin", "a"]) expect(probe[k]).toBeUndefined();
});

describe("decode under hostile input (property-based fuzzing)", () => {
  it("arbitrary bytes: 40,000 cases", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expectAccepted(decodeOutcome(bytes));
      }),
      { numRuns: 40_000 },
    );
  });

  it("mutated valid events (flips, truncation, insertion): 30,000 cases", () => {
    const mutation = fc.record({
      cut: fc.nat({ max: validJson.length }),
      flips: fc.array(
        fc.tuple(fc.nat({ max: validJson.length - 1 }), fc.integer({ min: 0, max: 255 })),
        {
          maxLength: 4,
        },
      ),
      insert: fc.option(fc.uint8Array({ minLength: 1, maxLength: 8 })),
    });
    fc.assert(
      fc.property(mutation, ({ cut, flips, insert }) => {
        const buf = Buffer.from(validJson);
        for (const [at, byte] of flips) buf[at] = byte;
        const bytes = insert
          ? Buffer.concat([buf.subarray(0, cut), Buffer.from(insert), buf.subarray(cut)])
          : buf.subarray(0, cut);
        expectAccepted(decodeOutcome(bytes));
      }),
      { numRuns: 30_000 },
    );
  });

  it("hostile JSON documents (prototype keys, wrong types, out-of-range numbers): 30,000 cases", () => {
    const hostileValue = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -0, 0.1, "", "\u0000", "\ud800"),
    );
    const hostileObject = fc
      .tuple(
        fc.dictionary(
          fc.oneof(fc.constantFrom(...hostileKeys), fc.string({ maxLength: 6 })),
          hostileValue,
          {
            maxKeys: 6,
          },
        ),
        fc.record(
          {
            user_id: fc.oneof(fc.string({ maxLength: 12 }), hostileValue),
            event_type: fc.oneof(fc.constantFrom("page_view", "click", "purchase"), hostileValue),
            ts: fc.oneof(fc.integer({ min: -10, max: 2 ** 31 }), hostileValue),
          },
          { requiredKeys: [] },
        ),
      )
      .map(([extra, base]) => {
        // Put hostile keys into the raw text: JSON.stringify of an object literal
        // would drop a real __proto__ key, the wire never does.
        const body = JSON.stringify({ ...base, ...extra });
        const inject = hostileKeys.map((k) => `"${k}":{"polluted":true,"isAdmin":true}`);
        return body === "{}"
          ? `{${inject[0]}}`
          : `${body.slice(0, -1)},${inject[body.length % inject.length]}}`;
      });
    fc.assert(
      fc.property(hostileObject, fc.boolean(), (text, asBytes) => {
        expectAccepted(decodeOutcome(asBytes ? Buffer.from(text) : text));
      }),
      { numRuns: 30_000 },
    );
  });

  it("deep nesting, huge strings and invalid UTF-8 end in coded errors", () => {
    const n = 100_000;
    expect(decodeOutcome(Buffer.from("[".repeat(n) + "]".repeat(n)))).toEqual({
      ok: false,
      code: "SCHEMA_INVALID_EVENT",
    });
    expect(decodeOutcome(Buffer.from(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`)).ok).toBe(false);
    const deepProps = `{"user_id":"u","event_type":"click","ts":1,"props":${'{"a":'.repeat(n)}1${"}".repeat(n + 1)}`;
    expect(decodeOutcome(Buffer.from(deepProps)).ok).toBe(false);

    const small = defineSchema({
      subject: "small",
      schema: UserEvent.jsonSchema,
      maxEventBytes: 1024,
    });
    const huge = Buffer.from(JSON.stringify({ ...validEvent, page: "x".repeat(10_000_000) }));
    expect(decodeOutcome(huge, small as typeof UserEvent)).toEqual({
      ok: false,
      code: "SCHEMA_EVENT_TOO_LARGE",
    });

    const accented = Buffer.from(JSON.stringify({ ...validEvent, user_id: "u-é" }));
    const broken = Buffer.from(accented);
    broken[broken.indexOf(0xc3)] = 0xff;
    expect(decodeOutcome(accented).ok).toBe(true);
    expect(decodeOutcome(broken)).toEqual({ ok: false, code: "SCHEMA_DECODE_FAILED" });
  });
});
