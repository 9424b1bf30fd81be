// Flexible-version Kafka requests written by hand, sent through a kafkajs broker.
//
// kafkajs 2.2.4 sends some APIs only in versions older than what Sluice
// needs (OffsetFetch up to version 4: no require_stable). Their newer
// versions are flexible (KIP-482): strings and arrays are compact (their
// length + 1 as an unsigned varint, 0 for null), every struct ends with
// tagged fields, the request header is version 2 (kafkajs's header version 1
// followed by tagged fields: one empty-tags byte opens the body here) and the
// response header is version 1 (the correlation id, which kafkajs reads,
// followed by tagged fields: skipped here before the body).
//
// The bytes are written and read with kafkajs's own Encoder and Decoder, and
// the request goes through the broker object's private sendRequest, so
// framing, correlation ids, request timeouts, KIP-219 throttling and the
// connection stay kafkajs's. Pinned to one kafkajs version.
import { ProducerError } from "../producer-error.js";
import { pinnedKafkajsCheck, symbolNamed } from "./kafkajs-private-cluster.js";

/** What of kafkajs's `Encoder` a request is written with. */
export interface FlexibleEncoder {
  readonly buffer: Buffer;
  writeBoolean(value: boolean): FlexibleEncoder;
  writeInt16(value: number): FlexibleEncoder;
  writeInt32(value: number): FlexibleEncoder;
  writeInt64(value: number | string): FlexibleEncoder;
  writeUVarInt(value: number): FlexibleEncoder;
  /** A compact (nullable) string: its byte length + 1 as an unsigned varint, 0 for null. */
  writeUVarIntString(value: string | null): FlexibleEncoder;
}

/** What of kafkajs's `Decoder` a response is read with. */
interface Decoder {
  readInt16(): number;
  readInt32(): number;
  readInt64(): bigint;
  readUVarInt(): number;
  readUVarIntString(): string | null;
  canReadBytes(length: number): boolean;
  forward(length: number): void;
}

interface Internals {
  createErrorFromCode: (code: number) => Error;
  Encoder: new () => FlexibleEncoder;
  Decoder: new (buffer: Buffer) => Decoder;
}

/**
 * kafkajs's internals that hand-written flexible requests need, or why they
 * are unusable. Loaded once, lazily; never throws.
 *
 * @internal
 */
export const flexibleRequestInternals = pinnedKafkajsCheck<Internals>(
  "Sluice's flexible-version requests",
  (require) => {
    const { createErrorFromCode } = require("kafkajs/src/protocol/error.js") as Partial<Internals>;
    const Encoder = require("kafkajs/src/protocol/encoder.js") as Internals["Encoder"] | undefined;
    const Decoder = require("kafkajs/src/protocol/decoder.js") as Internals["Decoder"] | undefined;
    const Broker = require("kafkajs/src/broker/index.js") as { prototype: object };
    if (typeof createErrorFromCode !== "function") {
      return "kafkajs's protocol errors have an unexpected shape";
    }
    const encoder = Encoder?.prototype as Record<string, unknown> | undefined;
    const decoder = Decoder?.prototype as Record<string, unknown> | undefined;
    const writes = ["writeBoolean", "writeInt16", "writeInt32", "writeInt64", "writeUVarInt"];
    const reads = ["readInt16", "readInt32", "readInt64", "readUVarInt", "readUVarIntString"];
    if (
      !Encoder ||
      !Decoder ||
      [...writes, "writeUVarIntString"].some((m) => typeof encoder?.[m] !== "function") ||
      [...reads, "canReadBytes", "forward"].some((m) => typeof decoder?.[m] !== "function")
    ) {
      return "kafkajs's protocol Encoder or Decoder has an unexpected shape";
    }
    if (!symbolNamed(Broker.prototype, "private:Broker:sendRequest")) {
      return "kafkajs's Broker has no private sendRequest";
    }
    return { createErrorFromCode, Encoder, Decoder };
  },
);

/**
 * kafkajs's internals, or a `PRODUCER_FENCING_UNAVAILABLE` error saying why
 * they are unusable.
 *
 * @internal
 */
export function flexibleInternalsOrThrow(): Internals {
  const internals = flexibleRequestInternals();
  if (typeof internals === "string") {
    throw new ProducerError("PRODUCER_FENCING_UNAVAILABLE", internals);
  }
  return internals;
}

/**
 * A kafkajs Encoder for a flexible request's body, holding already the empty
 * tagged fields that make kafkajs's request header version 1 a version 2.
 *
 * @throws ProducerError `PRODUCER_FENCING_UNAVAILABLE` when kafkajs's
 *   internals are unusable
 * @internal
 */
export function flexibleRequestBody(): FlexibleEncoder {
  return new (flexibleInternalsOrThrow().Encoder)().writeUVarInt(0);
}

/** Reads a flexible response with every read checked against its end. */
export interface FlexibleReader {
  int16(): number;
  int32(): number;
  /** An int64 as a decimal string (kafkajs's form of offsets). */
  int64(): string;
  uvarint(): number;
  /** A compact (nullable) string. */
  string(): string | null;
  /** A compact array's element count (its varint - 1; a null array is -1). */
  arrayLength(): number;
  /** Skips a struct's tagged fields, each by its size. */
  skipTags(): void;
}

/**
 * A reader of a flexible response's bytes (what follows the correlation id),
 * past the response header's tagged fields.
 *
 * @param buf - the response after its correlation id
 * @param apiName - for the error of a truncated response
 * @throws RangeError `"<apiName> response: truncated"` when a read passes the end
 * @internal
 */
export function flexibleResponseReader(buf: Buffer, apiName: string): FlexibleReader {
  const d = new (flexibleInternalsOrThrow().Decoder)(buf);
  // kafkajs's Decoder reads varints and strings past the end without an
  // error, and its ints throw Buffer's out-of-range error: every read is
  // checked, so that a truncated response says so.
  const need = (bytes: number) => {
    if (!d.canReadBytes(bytes)) throw new RangeError(`${apiName} response: truncated`);
  };
  const checked = <T>(value: T): T => {
    need(0);
    return value;
  };
  const fixed = <T>(bytes: number, read: () => T): T => {
    need(bytes);
    return read();
  };
  const uvarint = () => checked(d.readUVarInt());
  const reader: FlexibleReader = {
    int16: () => fixed(2, () => d.readInt16()),
    int32: () => fixed(4, () => d.readInt32()),
    int64: () => fixed(8, () => d.readInt64().toString()),
    uvarint,
    string: () => checked(d.readUVarIntString()),
    arrayLength: () => uvarint() - 1,
    // kafkajs's readTaggedFields skips one byte too few of a field's data
    skipTags: () => {
      for (let n = uvarint(); n > 0; n--) {
        uvarint();
        const size = uvarint();
        need(size);
        d.forward(size);
      }
    },
  };
  reader.skipTags();
  return reader;
}

/** One hand-written request, as {@link sendFlexibleRequest} sends it. */
export interface FlexibleRequest<T extends { throttleTime: number }> {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  /** From {@link flexibleRequestBody}. */
  body: FlexibleEncoder;
  /** Decodes the response after its correlation id (its throttle time: KIP-219's, kept by kafkajs). */
  decode: (raw: Buffer) => T;
  /** What needs this version, for the error of a broker without it ("a stable offset fetch"). */
  purpose: string;
  /** The first Kafka release with this version ("2.5"). */
  since: string;
}

type BrokerLike = Record<string | symbol, unknown> & {
  versions?: Record<number, { minVersion: number; maxVersion: number }> | null;
};

/**
 * Sends a hand-written flexible request through a kafkajs broker object's
 * own connection and answers its decoded response (never throwing on the
 * response's error codes: the caller reads them).
 *
 * @param broker - a kafkajs broker object (connected: its API versions known)
 * @param request - the request
 * @returns the decoded response
 * @throws ProducerError `PRODUCER_FENCING_UNAVAILABLE` when the broker does
 *   not support `apiVersion` or kafkajs's internals are unusable; kafkajs's
 *   connection errors as its own requests throw them
 * @internal
 */
export async function sendFlexibleRequest<T extends { throttleTime: number }>(
  broker: object,
  request: FlexibleRequest<T>,
): Promise<T> {
  flexibleInternalsOrThrow();
  const b = broker as BrokerLike;
  const send = symbolNamed(Object.getPrototypeOf(b) as object, "private:Broker:sendRequest");
  if (!send || typeof b[send] !== "function") {
    throw new ProducerError(
      "PRODUCER_FENCING_UNAVAILABLE",
      "the coordinator's broker object is not a kafkajs 2.2.4 Broker (no private sendRequest)",
    );
  }
  const { apiKey, apiVersion, apiName, body, decode } = request;
  const supported = b.versions?.[apiKey]?.maxVersion ?? -1;
  if (supported < apiVersion) {
    throw new ProducerError(
      "PRODUCER_FENCING_UNAVAILABLE",
      `the broker supports ${apiName} up to version ${supported}; ${request.purpose} needs version ${apiVersion} (Kafka ${request.since} or later)`,
    );
  }
  const protocolRequest = {
    request: { apiKey, apiVersion, apiName, encode: async () => body },
    response: {
      // the broker answered before throttling (KIP-219): kafkajs holds this
      // connection's next requests back for the time the response gives
      decode: async (raw: Buffer) => {
        const data = decode(raw);
        return { data, clientSideThrottleTime: data.throttleTime };
      },
      parse: async (decoded: { data: T }) => decoded.data,
    },
  };
  return (await (b[send] as (r: unknown) => Promise<unknown>).call(b, protocolRequest)) as T;
}
