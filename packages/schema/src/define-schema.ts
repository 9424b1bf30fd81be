import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import type { ValidateFunction } from "ajv/dist/2020.js";
import type { FromSchema, JSONSchema } from "json-schema-to-ts";
import { stringify as stableStringify } from "safe-stable-stringify";
import { compileSchema, toIssues } from "./internal/ajv.js";
import { preview } from "./internal/preview.js";
import { safeParse } from "./internal/safe-json.js";
import { SchemaError, type SchemaIssue } from "./schema-error.js";
import { CONFLUENT_MAGIC_BYTE } from "./wire-format.js";

/**
 * A JSON Schema object (draft 2020-12), written `as const` so that its
 * TypeScript type can be inferred.
 *
 * @since 0.1.0
 */
export type JsonSchemaObject = Exclude<JSONSchema, boolean>;

/**
 * Default largest encoded event, in bytes: 1 MiB, Kafka's default
 * `max.message.bytes` less record overhead.
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_EVENT_BYTES = 1_000_000;

/**
 * Options of {@link defineSchema}.
 *
 * @since 0.1.0
 */
export interface DefineSchemaOptions<S extends JsonSchemaObject> {
  /** Registry subject, for example `'user-event'` (usually `<topic>-value`). */
  subject: string;
  /** The JSON Schema (draft 2020-12). Write it `as const` to infer the event type. */
  schema: S;
  /**
   * Largest encoded event accepted by `encode` and `decode`, in bytes.
   * @defaultValue 1_000_000
   */
  maxEventBytes?: number;
}

/**
 * A compiled event schema: validates, encodes and decodes events of type `T`.
 * Made by {@link defineSchema}; safe to share across the whole process.
 *
 * @since 0.1.0
 */
export interface EventSchema<T = unknown> {
  /** Registry subject. */
  readonly subject: string;
  /** The JSON Schema this codec was compiled from (do not mutate). */
  readonly jsonSchema: JsonSchemaObject;
  /** Registry id; `undefined` until a registry's `register()` sets it. */
  id: number | undefined;
  /** Largest encoded event in bytes. */
  readonly maxEventBytes: number;
  /** SHA-256 (hex) of the schema's canonical JSON (keys sorted): equal schemas, equal fingerprints. */
  readonly fingerprint: string;
  /**
   * Validates `event` and serializes it to plain UTF-8 JSON.
   *
   * @param event - the event to encode
   * @returns the JSON bytes
   * @throws SchemaError `SCHEMA_INVALID_EVENT` (with every ajv error) or `SCHEMA_EVENT_TOO_LARGE`
   */
  encode(event: T): Buffer;
  /**
   * Parses and validates an event. Bytes with Confluent framing (magic byte 0
   * and a 4-byte schema id) are accepted too: the frame is skipped.
   *
   * @param bytes - JSON as bytes or string
   * @returns the validated event
   * @throws SchemaError `SCHEMA_DECODE_FAILED`, `SCHEMA_INVALID_EVENT` or `SCHEMA_EVENT_TOO_LARGE`
   */
  decode(bytes: Uint8Array | string): T;
  /**
   * Type guard: whether `value` matches the schema.
   *
   * @param value - anything
   * @returns true when valid
   */
  validate(value: unknown): value is T;
  /**
   * Validates and returns every failure instead of throwing.
   *
   * @param value - anything
   * @returns the issues; empty when valid
   */
  check(value: unknown): readonly SchemaIssue[];
}

/**
 * The event type of an {@link EventSchema}.
 *
 * @example
 * ```ts
 * type UserEvent = SchemaType<typeof UserEvent>;
 * ```
 * @since 0.1.0
 */
export type SchemaType<E> = E extends EventSchema<infer T> ? T : never;

/**
 * Defines an event type from a JSON Schema (draft 2020-12). The schema is
 * compiled once by ajv in strict mode with ajv-formats; the TypeScript type is
 * inferred from the schema (json-schema-to-ts), so one definition types the
 * producer, the job and the sinks.
 *
 * @param options - subject, schema and maximum event size
 * @returns the compiled codec
 * @throws SchemaError `SCHEMA_INVALID_DEFINITION` when the schema does not compile in strict mode or an option is invalid
 * @example
 * ```ts
 * const UserEvent = defineSchema({
 *   subject: 'user-event',
 *   schema: {
 *     type: 'object',
 *     properties: { user_id: { type: 'string' }, ts: { type: 'integer' } },
 *     required: ['user_id', 'ts'],
 *     additionalProperties: false,
 *   } as const,
 * });
 * type UserEvent = SchemaType<typeof UserEvent>; // { user_id: string; ts: number }
 * const bytes = UserEvent.encode({ user_id: 'u1', ts: Date.now() });
 * ```
 * @since 0.1.0
 */
export function defineSchema<const S extends JsonSchemaObject>(
  options: DefineSchemaOptions<S>,
): EventSchema<FromSchema<S>>;
export function defineSchema(options: DefineSchemaOptions<JsonSchemaObject>): EventSchema<T> {
  return buildSchema(options);
}

// Not generic on purpose: instantiating FromSchema<S> inside the body makes
// TypeScript's inference explode; the public signature carries the type.
// biome-ignore lint/suspicious/noExplicitAny: the event type is erased here
type T = any;

function buildSchema(options: DefineSchemaOptions<JsonSchemaObject>): EventSchema<T> {
  if (options === null || typeof options !== "object") {
    throw new SchemaError("SCHEMA_INVALID_DEFINITION", "defineSchema needs an options object", {
      value: options,
    });
  }
  const { subject, schema } = options;
  if (typeof subject !== "string" || subject.length === 0) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `subject must be a non-empty string; got ${preview(subject)}`,
      { value: subject },
    );
  }
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  if (!Number.isInteger(maxEventBytes) || maxEventBytes <= 0) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `maxEventBytes must be a positive integer; got ${preview(maxEventBytes)}`,
      { value: maxEventBytes, subject },
    );
  }
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `schema of subject '${subject}' must be a JSON Schema object`,
      { value: schema, subject },
    );
  }
  let validator: ValidateFunction;
  try {
    validator = compileSchema(schema as object);
  } catch (cause) {
    throw new SchemaError(
      "SCHEMA_INVALID_DEFINITION",
      `schema of subject '${subject}' does not compile (ajv strict, draft 2020-12): ${(cause as Error).message}`,
      { cause, value: schema, subject },
    );
  }
  const fingerprint = schemaFingerprint(schema as object);

  const invalid = (value: unknown): SchemaError => {
    const errors = toIssues(validator.errors);
    const list = errors.map((e) => `${e.path || "/"} ${e.message}`).join("; ");
    return new SchemaError(
      "SCHEMA_INVALID_EVENT",
      `event does not match schema '${subject}': ${list}; value: ${preview(value)}`,
      { errors, value, subject },
    );
  };
  const tooLarge = (size: number, value: unknown): SchemaError =>
    new SchemaError(
      "SCHEMA_EVENT_TOO_LARGE",
      `event of schema '${subject}' is ${size} bytes, over maxEventBytes ${maxEventBytes}; shrink the event or raise maxEventBytes (and the topic's max.message.bytes)`,
      { value, subject },
    );

  const codec: EventSchema<T> = {
    subject,
    jsonSchema: schema,
    id: undefined,
    maxEventBytes,
    fingerprint,
    encode(event: T): Buffer {
      if (!validator(event)) throw invalid(event);
      const buf = Buffer.from(JSON.stringify(event), "utf8");
      if (buf.byteLength > maxEventBytes) throw tooLarge(buf.byteLength, event);
      return buf;
    },
    decode(bytes: Uint8Array | string): T {
      let text: string;
      if (typeof bytes === "string") {
        const size = Buffer.byteLength(bytes, "utf8");
        if (size > maxEventBytes) throw tooLarge(size, bytes);
        text = bytes;
      } else if (bytes instanceof Uint8Array) {
        let view = bytes;
        if (view.byteLength >= 5 && view[0] === CONFLUENT_MAGIC_BYTE) view = view.subarray(5);
        if (view.byteLength > maxEventBytes) throw tooLarge(view.byteLength, bytes);
        const buf = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
        // toString("utf8") would silently turn bad bytes into U+FFFD and
        // store altered text: refuse them instead.
        if (!isUtf8(buf)) {
          throw new SchemaError(
            "SCHEMA_DECODE_FAILED",
            `bytes are not valid UTF-8, so not a JSON event for schema '${subject}'`,
            { value: bytes, subject },
          );
        }
        text = buf.toString("utf8");
      } else {
        throw new SchemaError(
          "SCHEMA_DECODE_FAILED",
          `decode expects bytes (Uint8Array/Buffer) or a string; got ${preview(bytes)}`,
          { value: bytes, subject },
        );
      }
      let value: unknown;
      try {
        value = safeParse(text);
      } catch (cause) {
        throw new SchemaError(
          "SCHEMA_DECODE_FAILED",
          `bytes are not a valid JSON event for schema '${subject}': ${(cause as Error).message}; got ${preview(text)}`,
          { cause, value: text, subject },
        );
      }
      let ok: boolean;
      try {
        ok = validator(value);
      } catch (cause) {
        // Only a hostile shape (nesting deep enough to exhaust the stack) gets here.
        throw new SchemaError(
          "SCHEMA_DECODE_FAILED",
          `event for schema '${subject}' could not be validated: ${(cause as Error).message}`,
          { cause, value: text, subject },
        );
      }
      if (!ok) throw invalid(value);
      return value as T;
    },
    validate(value: unknown): value is T {
      return validator(value);
    },
    check(value: unknown) {
      return validator(value) ? [] : toIssues(validator.errors);
    },
  };
  return codec;
}

/**
 * SHA-256 (hex) of a schema's canonical JSON text (object keys sorted), so
 * that the same schema written with another key order has the same
 * fingerprint.
 *
 * @param schema - a JSON Schema
 * @returns 64 hex characters
 * @example
 * ```ts
 * schemaFingerprint({ type: 'string' }) === schemaFingerprint({ type: 'string' })
 * ```
 * @since 0.1.0
 */
export function schemaFingerprint(schema: unknown): string {
  return createHash("sha256")
    .update(stableStringify(schema) ?? "")
    .digest("hex");
}
