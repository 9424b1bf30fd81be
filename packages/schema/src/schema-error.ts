import { SluiceError, type SluiceErrorOptions } from "./sluice-error.js";

/**
 * Stable codes carried by {@link SchemaError}.
 *
 * | code | meaning |
 * |---|---|
 * | `SCHEMA_DECODE_FAILED` | bytes are not JSON (or carry a prototype-poisoning key) |
 * | `SCHEMA_INVALID_EVENT` | the value does not match the JSON Schema |
 * | `SCHEMA_EVENT_TOO_LARGE` | the encoded event exceeds `maxEventBytes` |
 * | `SCHEMA_INVALID_DEFINITION` | the schema or the options given to a factory are unusable |
 * | `SCHEMA_NOT_FOUND` | a registry has no schema for that id or subject |
 * | `SCHEMA_INCOMPATIBLE` | a new version breaks the subject's compatibility mode |
 * | `SCHEMA_FRAMING_INVALID` | bytes do not start with the Confluent magic byte and a 4-byte id |
 * | `SCHEMA_REGISTRY_FAILED` | the registry's storage (Kafka, HTTP, disk) failed; retryable |
 * | `SCHEMA_REGISTRY_CLOSED` | the registry was used after `close()` |
 *
 * @since 0.1.0
 */
export type SchemaErrorCode =
  | "SCHEMA_DECODE_FAILED"
  | "SCHEMA_INVALID_EVENT"
  | "SCHEMA_EVENT_TOO_LARGE"
  | "SCHEMA_INVALID_DEFINITION"
  | "SCHEMA_NOT_FOUND"
  | "SCHEMA_INCOMPATIBLE"
  | "SCHEMA_FRAMING_INVALID"
  | "SCHEMA_REGISTRY_FAILED"
  | "SCHEMA_REGISTRY_CLOSED";

/**
 * One validation failure reported by ajv.
 *
 * @since 0.1.0
 */
export interface SchemaIssue {
  /** JSON Pointer into the event (`''` for the root, `/props/page` ...). */
  readonly path: string;
  /** Human-readable message from ajv, for example `must be string`. */
  readonly message: string;
  /** The JSON Schema keyword that failed (`type`, `required`, `enum` ...). */
  readonly keyword: string;
  /** JSON Pointer into the schema, for example `#/properties/ts/type`. */
  readonly schemaPath: string;
  /** Keyword parameters reported by ajv (for example `{ missingProperty: 'ts' }`). */
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * One incompatible difference between two schema versions.
 *
 * @since 0.1.0
 */
export interface BreakingChange {
  /** JSON Pointer into the schema where the change is. */
  readonly path: string;
  /** Kind of change, for example `property-removed`, `type-narrowed`, `enum-value-removed`. */
  readonly kind: string;
  /** Which compatibility direction it breaks: readers of the new schema or of the old one. */
  readonly breaks: "BACKWARD" | "FORWARD";
  /** Sentence describing the change. */
  readonly message: string;
}

/**
 * Options of {@link SchemaError}.
 *
 * @since 0.1.0
 */
export interface SchemaErrorOptions extends SluiceErrorOptions {
  /** Every validation failure, in ajv's order. @defaultValue [] */
  errors?: readonly SchemaIssue[];
  /** The offending value (event, bytes as string, id ...). */
  value?: unknown;
  /** The schema subject concerned. */
  subject?: string;
  /** The breaking changes found by a compatibility check. @defaultValue [] */
  changes?: readonly BreakingChange[];
}

/**
 * The error class of `@sluice/schema`. Every failure of encoding, decoding,
 * validation and registries is a `SchemaError` with a stable
 * {@link SchemaErrorCode}.
 *
 * @example
 * ```ts
 * try { UserEvent.decode(bytes) } catch (err) {
 *   if (SchemaError.isInstance(err) && err.code === 'SCHEMA_INVALID_EVENT') {
 *     for (const e of err.errors) console.log(e.path, e.message);
 *   }
 * }
 * ```
 * @since 0.1.0
 */
export class SchemaError extends SluiceError {
  declare readonly code: SchemaErrorCode;
  /** Every validation failure (empty when the failure was not a validation). */
  readonly errors: readonly SchemaIssue[];
  /** The offending value, when there is one. */
  readonly value: unknown;
  /** The subject concerned, when known. */
  readonly subject: string | undefined;
  /** Breaking changes found by a compatibility check (`SCHEMA_INCOMPATIBLE`). */
  readonly changes: readonly BreakingChange[];

  /**
   * @param code - stable error code
   * @param message - what was wrong and what to do
   * @param options - cause, retryable flag, ajv errors, offending value, subject, changes
   */
  constructor(code: SchemaErrorCode, message: string, options: SchemaErrorOptions = {}) {
    super(code, message, options);
    this.name = "SchemaError";
    this.errors = options.errors ?? [];
    this.value = options.value;
    this.subject = options.subject;
    this.changes = options.changes ?? [];
  }

  /**
   * True for a `SchemaError` from any installed copy of `@sluice/schema`.
   *
   * @param value - anything caught
   * @returns whether `value` is a Sluice error whose name is `SchemaError`
   */
  static override isInstance(value: unknown): value is SchemaError {
    return SluiceError.isInstance(value) && value.name === "SchemaError";
  }
}
