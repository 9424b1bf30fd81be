import type { Classified } from "./batching-sink.js";

/** Server-side conditions that pass: overload, timeouts, network. */
const RETRYABLE = new Set([
  3, 159, 202, 203, 209, 210, 236, 241, 242, 252, 285, 319, 394, 425, 439, 999, 1000,
]);
/**
 * Conditions no row can fix: fail the sink instead of bisecting into the DLQ.
 * Includes refused credentials and rights (164 READONLY: the user's profile
 * may not write; a replica that lost ZooKeeper is 242, retried).
 */
const FATAL = new Set([115, 164, 192, 193, 194, 195, 291, 497, 516]);
/**
 * UNKNOWN_TABLE and UNKNOWN_DATABASE: permanent on a running server, but a
 * server shutting down (tables detached) or starting (not attached yet)
 * answers them for a moment, so they are retried for a bounded time.
 */
const MISSING_TABLE = new Set([60, 81]);

const TOO_MANY_PARTS = 252;

/** The ClickHouse error code carried by an error from the client, chDB or the server text. */
export function clickHouseCode(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { code?: unknown; clickhouseCode?: unknown; message?: unknown };
  if (typeof e.clickhouseCode === "number") return e.clickhouseCode;
  if (typeof e.code === "string" && /^\d+$/.test(e.code)) return Number(e.code);
  const m = /Code: (\d+)/.exec(typeof e.message === "string" ? e.message : "");
  return m ? Number(m[1]) : undefined;
}

/** How the sink handles a missing table or database. */
export interface MissingTablePolicy {
  /** How long an unbroken run of such answers is retried. */
  retryForMs: number;
  /** What to do when it persists (names the table). */
  advice: string;
}

/**
 * Classifies an error of an insert or query.
 *
 * @param err - from the client, chDB or the sink itself
 * @param missingTable - how to treat codes 60 and 81 @defaultValue fail at once
 */
export function classifyClickHouse(err: unknown, missingTable?: MissingTablePolicy): Classified {
  const code = clickHouseCode(err);
  if (code === undefined) {
    const sys = (err as { code?: unknown })?.code;
    if (typeof sys === "string" && sys.startsWith("SINK_"))
      return { retryable: false, fatal: true, code: sys };
    // transport failures: refused, reset, timeouts, 5xx without a ClickHouse code
    return {
      retryable: true,
      code: typeof sys === "string" && sys ? sys : "CLICKHOUSE_UNREACHABLE",
    };
  }
  const name = `CLICKHOUSE_${code}`;
  if (code === TOO_MANY_PARTS) return { retryable: true, code: name, slowdown: 10 };
  if (RETRYABLE.has(code)) return { retryable: true, code: name };
  if (MISSING_TABLE.has(code)) {
    return {
      retryable: true,
      code: name,
      retryForMs: missingTable?.retryForMs ?? 0,
      ...(missingTable ? { advice: missingTable.advice } : {}),
    };
  }
  return { retryable: false, fatal: FATAL.has(code), code: name };
}
