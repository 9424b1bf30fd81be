import type { CompatibilityMode, CompatibilityResult } from "./compatibility.js";
import type { JsonSchemaObject } from "./define-schema.js";

/**
 * A schema as stored by a registry.
 *
 * @since 0.1.0
 */
export interface RegisteredSchema {
  /** Registry id (positive 31-bit integer), written in record headers / Confluent framing. */
  readonly id: number;
  /** Subject it was registered under (for `getById`, the first subject that registered it). */
  readonly subject: string;
  /** Version within the subject, from 1. */
  readonly version: number;
  /** The JSON Schema. */
  readonly schema: JsonSchemaObject;
}

/**
 * What a registry registers: an `EventSchema` from `defineSchema` fits, and
 * gets its `id` set.
 *
 * @since 0.1.0
 */
export interface SchemaRef {
  /** Subject to register under. */
  readonly subject: string;
  /** The JSON Schema. */
  readonly jsonSchema: JsonSchemaObject;
  /** Set by `register()`. */
  id?: number | undefined;
}

/**
 * Lifecycle of a registry.
 *
 * @since 0.1.0
 */
export type RegistryStatus = "opening" | "open" | "closing" | "closed";

/**
 * The one interface of every schema registry: local, Kafka-backed and
 * Confluent-compatible.
 *
 * @since 0.1.0
 */
export interface SchemaRegistry {
  /** Lifecycle state. */
  readonly status: RegistryStatus;
  /**
   * Registers a schema under its subject (idempotent: the same schema gets the
   * same id and version back) after checking compatibility with the subject's
   * latest version. Sets `schema.id`.
   *
   * @param schema - an `EventSchema` or `{ subject, jsonSchema }`
   * @returns the registered schema
   * @throws SchemaError `SCHEMA_INCOMPATIBLE` (with `changes`), `SCHEMA_INVALID_DEFINITION`, `SCHEMA_REGISTRY_FAILED`, `SCHEMA_REGISTRY_CLOSED`
   */
  register(schema: SchemaRef): Promise<RegisteredSchema>;
  /**
   * Looks a schema up by id.
   *
   * @param id - registry id
   * @returns the schema
   * @throws SchemaError `SCHEMA_NOT_FOUND`, `SCHEMA_REGISTRY_FAILED`, `SCHEMA_REGISTRY_CLOSED`
   */
  getById(id: number): Promise<RegisteredSchema>;
  /**
   * The latest version of a subject.
   *
   * @param subject - subject name
   * @returns the latest registered schema
   * @throws SchemaError `SCHEMA_NOT_FOUND`, `SCHEMA_REGISTRY_FAILED`, `SCHEMA_REGISTRY_CLOSED`
   */
  latest(subject: string): Promise<RegisteredSchema>;
  /**
   * Checks a candidate against the subject's latest version without
   * registering it (compatible when the subject is new).
   *
   * @param schema - an `EventSchema` or `{ subject, jsonSchema }`
   * @returns whether compatible, and every breaking change
   * @throws SchemaError `SCHEMA_REGISTRY_FAILED`, `SCHEMA_REGISTRY_CLOSED`
   */
  checkCompatibility(schema: SchemaRef): Promise<CompatibilityResult>;
  /**
   * Releases connections / files. Idempotent.
   *
   * @returns resolves when closed
   */
  close(): Promise<void>;
  /** Same as {@link SchemaRegistry.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Options shared by the local and Kafka-backed registries.
 *
 * @since 0.1.0
 */
export interface RegistryOptions {
  /** Compatibility mode for every subject. @defaultValue `'BACKWARD'` */
  compatibility?: CompatibilityMode;
}
