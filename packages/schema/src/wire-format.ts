import { SchemaError } from "./schema-error.js";

/**
 * Record header names written by Sluice producers and read by Sluice
 * consumers. Values are UTF-8 strings.
 *
 * @since 0.1.0
 */
export const HEADERS = {
  /** Registry id of the value's schema (decimal). */
  schemaId: "sluice-schema-id",
  /** Schema subject of the value. */
  subject: "sluice-subject",
  /** MIME type of the value: `application/json`. */
  contentType: "content-type",
  /** Event time in epoch milliseconds (decimal). */
  eventTime: "sluice-event-time",
  /** W3C trace context, when a trace is active. */
  traceparent: "traceparent",
  /** Dead-letter records: stable error code. */
  errorCode: "sluice-error-code",
  /** Dead-letter records: error message. */
  errorMessage: "sluice-error-message",
  /** Dead-letter records: where the record came from (topic, or topic/partition/offset). */
  errorSource: "sluice-error-source",
} as const;

/**
 * Content type of Sluice payloads.
 *
 * @since 0.1.0
 */
export const JSON_CONTENT_TYPE = "application/json";

/**
 * The Confluent wire format's magic byte.
 *
 * @since 0.1.0
 */
export const CONFLUENT_MAGIC_BYTE = 0;

/**
 * Prefixes a payload with Confluent framing (magic byte 0 and the schema id as
 * a 4-byte big-endian integer), for Confluent consumers.
 *
 * @param schemaId - registry id (0 … 2^31-1)
 * @param payload - the JSON bytes
 * @returns framed bytes
 * @throws SchemaError `SCHEMA_FRAMING_INVALID` when the id is not a valid non-negative 32-bit integer
 * @example
 * ```ts
 * const framed = frameConfluent(42, UserEvent.encode(event));
 * ```
 * @since 0.1.0
 */
export function frameConfluent(schemaId: number, payload: Uint8Array): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0x7fffffff) {
    throw new SchemaError(
      "SCHEMA_FRAMING_INVALID",
      `schema id for Confluent framing must be an integer 0..2147483647; got ${schemaId}`,
      { value: schemaId },
    );
  }
  const out = Buffer.allocUnsafe(5 + payload.byteLength);
  out[0] = CONFLUENT_MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  out.set(payload, 5);
  return out;
}

/**
 * Splits Confluent-framed bytes into schema id and payload.
 *
 * @param bytes - framed bytes
 * @returns the schema id and the payload (a view, not a copy)
 * @throws SchemaError `SCHEMA_FRAMING_INVALID` when the bytes are shorter than 5 or the magic byte is not 0
 * @example
 * ```ts
 * const { schemaId, payload } = unframeConfluent(message.value);
 * ```
 * @since 0.1.0
 */
export function unframeConfluent(bytes: Uint8Array): { schemaId: number; payload: Buffer } {
  if (bytes.byteLength < 5 || bytes[0] !== CONFLUENT_MAGIC_BYTE) {
    throw new SchemaError(
      "SCHEMA_FRAMING_INVALID",
      `bytes are not Confluent-framed (need magic byte 0 and a 4-byte schema id; got ${bytes.byteLength} bytes starting with ${bytes[0]})`,
      { value: bytes },
    );
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { schemaId: buf.readUInt32BE(1), payload: buf.subarray(5) };
}
