/** What a redacted value becomes. */
export const REDACTED = "[redacted]";

// Keys whose (non-boolean) values are credentials, at any depth.
const SECRET_KEY =
  /^(pass(word|wd|phrase)?|pwd|.*password.*|.*secret.*|.*token|api[-_]?key|authorization|proxy-authorization|cookie|set-cookie|credentials?|private[-_]?key|access[-_]?key[-_]?id|pfx|oauthbearerprovider|authenticationprovider)$/i;
// Objects whose every field except these is a credential (kafkajs `sasl`, `ssl`).
const KEEP_IN: Record<string, RegExp> = {
  sasl: /^mechanism$/,
  ssl: /^(rejectUnauthorized|servername|minVersion|maxVersion)$/,
};

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;
const KEY_VALUE =
  /\b(password|passwd|pwd|secret|token|api[-_]?key|sasl[-_.]?password)=([^&\s;,]+)/gi;

/** Removes credentials from a string: URL user-info passwords and `password=...` pairs. */
export function redactString(s: string): string {
  if (!s.includes("://") && !s.includes("=")) return s;
  return s.replace(URL_USERINFO, `$1$2:${REDACTED}@`).replace(KEY_VALUE, `$1=${REDACTED}`);
}

const MAX_DEPTH = 10;

/**
 * A copy of `value` with credentials replaced by `[redacted]`: fields named
 * like secrets at any depth, everything but the mechanism in `sasl`, key
 * material in `ssl`, passwords in URLs. Never mutates its input.
 */
export function redactDeep(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return redactString(value);
  if (typeof value !== "object" || value === null) return value;
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (seen.has(value)) return "[circular]";
  seen.add(value);
  if (value instanceof Error) return redactError(value, depth, seen);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return value;
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactField(k, v, depth, seen);
  return out;
}

function redactField(key: string, v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (v === undefined || v === null || typeof v === "boolean") return v;
  const keep = KEEP_IN[key];
  if (keep && typeof v === "object" && !Array.isArray(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      out[k] =
        keep.test(k) || x === undefined || typeof x === "boolean"
          ? redactDeep(x, depth + 2, seen)
          : REDACTED;
    }
    return out;
  }
  // kafkajs logs Kafka protocol `apiKey` numbers (ApiVersions); those are not secrets.
  if (typeof v === "number" && /^api[-_]?key$/i.test(key)) return v;
  if (SECRET_KEY.test(key)) return REDACTED;
  return redactDeep(v, depth + 1, seen);
}

/** A copy of an error (same prototype, so loggers still see its class) with credentials removed. */
function redactError(err: Error, depth: number, seen: WeakSet<object>): Error {
  const copy = Object.create(Object.getPrototypeOf(err)) as Error & Record<string, unknown>;
  for (const [k, v] of Object.entries(err)) copy[k] = redactField(k, v, depth, seen);
  Object.defineProperty(copy, "message", {
    value: redactString(err.message),
    enumerable: false,
    writable: true,
    configurable: true,
  });
  if (err.stack) {
    Object.defineProperty(copy, "stack", {
      value: redactString(err.stack),
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  if (Object.hasOwn(err, "name")) copy.name = err.name;
  if (err.cause !== undefined) {
    Object.defineProperty(copy, "cause", {
      value: redactDeep(err.cause, depth + 1, seen),
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  if (err instanceof AggregateError) {
    Object.defineProperty(copy, "errors", {
      value: redactDeep(err.errors, depth + 1, seen),
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
