export {
  type CompatibilityMode,
  type CompatibilityResult,
  checkCompatibility,
} from "./compatibility.js";
export {
  type ConfluentRegistryOptions,
  createConfluentRegistry,
} from "./confluent-registry.js";
export {
  DEFAULT_MAX_EVENT_BYTES,
  type DefineSchemaOptions,
  defineSchema,
  type EventSchema,
  type JsonSchemaObject,
  type SchemaType,
  schemaFingerprint,
} from "./define-schema.js";
export { type Duration, parseDuration } from "./duration.js";
export {
  createKafkaRegistry,
  type KafkaRegistryOptions,
  kafkaSchemaId,
} from "./kafka-registry.js";
export { createLocalRegistry, type LocalRegistryOptions } from "./local-registry.js";
export {
  type BreakingChange,
  SchemaError,
  type SchemaErrorCode,
  type SchemaErrorOptions,
  type SchemaIssue,
} from "./schema-error.js";
export type {
  RegisteredSchema,
  RegistryOptions,
  RegistryStatus,
  SchemaRef,
  SchemaRegistry,
} from "./schema-registry.js";
export { SluiceError, type SluiceErrorOptions } from "./sluice-error.js";
export {
  CONFLUENT_MAGIC_BYTE,
  frameConfluent,
  HEADERS,
  JSON_CONTENT_TYPE,
  unframeConfluent,
} from "./wire-format.js";
