import { deserialize, serialize } from "node:v8";

/**
 * Turns state values into bytes and back. The same codec must be used by
 * every process that opens the store or restores it from its changelog.
 *
 * @example
 * ```ts
 * const utf8: ValueCodec<string> = {
 *   name: "utf8",
 *   encode: (v) => Buffer.from(v, "utf8"),
 *   decode: (b) => b.toString("utf8"),
 * };
 * ```
 * @since 0.1.0
 */
export interface ValueCodec<V = unknown> {
  /** A short name used in error messages. */
  readonly name: string;
  /** Encodes one value. Must be deterministic for equal values. */
  encode(value: V): Uint8Array;
  /** Decodes bytes produced by {@link ValueCodec.encode}. */
  decode(bytes: Buffer): V;
}

/**
 * JSON codec (the default): human-readable changelog records; values must be
 * JSON-serialisable (no `undefined`, `Map`, `BigInt`).
 *
 * @since 0.1.0
 */
export const jsonCodec: ValueCodec<unknown> = {
  name: "json",
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`value ${String(value)} is not JSON-serialisable`);
    return Buffer.from(text, "utf8");
  },
  decode(bytes) {
    return JSON.parse(bytes.toString("utf8"));
  },
};

/**
 * `node:v8` structured-clone codec: keeps `Map`, `Set`, `Date`, `BigInt` and
 * typed arrays; bytes are only readable by Node.js.
 *
 * @since 0.1.0
 */
export const v8Codec: ValueCodec<unknown> = {
  name: "v8",
  encode: (value) => serialize(value),
  decode: (bytes) => deserialize(bytes),
};
