import ms from "ms";
import { SluiceError } from "./sluice-error.js";

/**
 * A duration given as milliseconds (`30000`) or as a string with a unit
 * (`'30s'`, `'5m'`, `'1h'`, `'7d'`, `'250ms'`).
 *
 * @since 0.1.0
 */
export type Duration = number | string;

/**
 * Converts a {@link Duration} to whole milliseconds. Every Sluice option that
 * takes a time span goes through this one parser.
 *
 * @param value - milliseconds or a string such as `'5m'`
 * @param name - the option's name, used in the error message
 * @returns the duration in milliseconds (a non-negative integer)
 * @throws SluiceError `INVALID_DURATION` when the value is negative, not finite or not understood
 * @example
 * ```ts
 * parseDuration('5m') // 300000
 * parseDuration(1500) // 1500
 * ```
 * @since 0.1.0
 */
export function parseDuration(value: Duration, name = "duration"): number {
  let result: number | undefined;
  if (typeof value === "number") {
    result = value;
  } else if (typeof value === "string") {
    const trimmed = value.trim();
    try {
      result = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : ms(trimmed as ms.StringValue);
    } catch {
      result = undefined;
    }
  }
  if (result === undefined || !Number.isFinite(result) || result < 0) {
    throw new SluiceError(
      "INVALID_DURATION",
      `${name} must be a non-negative number of milliseconds or a string like '30s', '5m', '1h'; got ${JSON.stringify(value)}`,
    );
  }
  return Math.round(result);
}
