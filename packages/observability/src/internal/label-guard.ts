/** Value that replaces a label value once a label has seen too many distinct values. */
export const OVERFLOW_LABEL = "__other__";

const MAX_VALUE_LENGTH = 64;

/**
 * Keeps label cardinality bounded: each label name accepts at most `max`
 * distinct values; later new values collapse into {@link OVERFLOW_LABEL}.
 * Values are strings cut to 64 characters; control characters are replaced.
 */
export class LabelGuard {
  readonly #seen = new Map<string, Set<string>>();
  readonly #max: number;

  readonly #maxPartitions: number;

  /**
   * @param max - distinct values per label
   * @param maxPartitions - distinct values of `partition`, which Kafka bounds
   *   (the partition count), not user data
   */
  constructor(max: number, maxPartitions = Math.max(max, 1024)) {
    this.#max = max;
    this.#maxPartitions = maxPartitions;
  }

  /** A bounded string value for label `label`. */
  value(label: string, raw: unknown): string {
    let v: string;
    if (typeof raw === "string") v = raw;
    else if (typeof raw === "number" && Number.isFinite(raw)) v = String(raw);
    else v = "unknown";
    if (v.length === 0) v = "unknown";
    if (v.length > MAX_VALUE_LENGTH) v = v.slice(0, MAX_VALUE_LENGTH);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
    v = v.replace(/[\u0000-\u001f\u007f]/g, "_");
    let set = this.#seen.get(label);
    if (!set) {
      set = new Set();
      this.#seen.set(label, set);
    }
    if (set.has(v)) return v;
    if (set.size >= (label === "partition" ? this.#maxPartitions : this.#max))
      return OVERFLOW_LABEL;
    set.add(v);
    return v;
  }

  /** A partition label: a non-negative integer, else `unknown`. */
  partition(raw: unknown): string {
    if (typeof raw === "number" && Number.isInteger(raw) && raw >= 0) {
      return this.value("partition", raw);
    }
    return "unknown";
  }

  /** An error-code label from an error-like value (its `code` when it is a short identifier). */
  errorCode(error: unknown): string {
    const code =
      typeof error === "string"
        ? error
        : typeof error === "object" && error !== null
          ? (error as { code?: unknown }).code
          : undefined;
    if (typeof code === "string" && /^[A-Za-z0-9_.:-]{1,64}$/.test(code)) {
      return this.value("code", code);
    }
    if (typeof code === "number" && Number.isInteger(code)) return this.value("code", String(code));
    return "unknown";
  }

  /** Like {@link errorCode} for a field that is already a code string. */
  code(raw: unknown): string {
    return this.errorCode(typeof raw === "string" ? raw : undefined);
  }

  reset(): void {
    this.#seen.clear();
  }
}
