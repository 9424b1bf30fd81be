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
  type BreakingChange,
  SchemaError,
  type SchemaErrorCode,
  type SchemaErrorOptions,
  type SchemaIssue,
} from "./schema-error.js";
export { SluiceError, type SluiceErrorOptions } from "./sluice-error.js";
export {
  CONFLUENT_MAGIC_BYTE,
  frameConfluent,
  HEADERS,
  JSON_CONTENT_TYPE,
  unframeConfluent,
} from "./wire-format.js";
