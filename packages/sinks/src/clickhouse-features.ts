import type { ClickHouseExecutor } from "./clickhouse-executor.js";

/**
 * What the connected ClickHouse supports, from its version. The sink and the
 * DDL helpers degrade on old servers (the Debian 18.16 package) instead of
 * failing.
 *
 * @since 0.1.0
 */
export interface ClickHouseFeatures {
  /** Server version string, e.g. `26.7.2.1` or `18.16.1`. */
  version: string;
  /** Major and minor version numbers. */
  major: number;
  minor: number;
  /** `insert_deduplication_token` (22.2+). */
  deduplicationToken: boolean;
  /** `LowCardinality(...)` (19.3+). */
  lowCardinality: boolean;
  /** `DateTime64(3, 'UTC')` (20.1+). */
  dateTime64: boolean;
  /** Table TTL (19.6+). */
  ttl: boolean;
  /** `Bool` column type (21.12+). */
  bool: boolean;
  /** `non_replicated_deduplication_window` MergeTree setting (20.9+). */
  nonReplicatedDeduplication: boolean;
}

const atLeast = (major: number, minor: number, m: number, n: number) =>
  major > m || (major === m && minor >= n);

/**
 * Derives {@link ClickHouseFeatures} from a version string.
 *
 * @param version - `SELECT version()` output
 * @returns the features
 * @throws nothing; an unparsable version is treated as current
 * @example
 * ```ts
 * featuresOf("18.16.1").deduplicationToken // false
 * ```
 * @since 0.1.0
 */
export function featuresOf(version: string): ClickHouseFeatures {
  const m = /^(\d+)\.(\d+)/.exec(version);
  const major = m ? Number(m[1]) : 99;
  const minor = m ? Number(m[2]) : 0;
  return {
    version,
    major,
    minor,
    deduplicationToken: atLeast(major, minor, 22, 2),
    lowCardinality: atLeast(major, minor, 19, 3),
    dateTime64: atLeast(major, minor, 20, 1),
    ttl: atLeast(major, minor, 19, 6),
    bool: atLeast(major, minor, 21, 12),
    nonReplicatedDeduplication: atLeast(major, minor, 20, 9),
  };
}

/**
 * Asks the server for its version and returns what it supports.
 *
 * @param executor - the connection
 * @returns the features
 * @throws the connection's error when the server cannot be reached
 * @example
 * ```ts
 * const f = await detectClickHouseFeatures(fromClickHouseClient(client));
 * ```
 * @since 0.1.0
 */
export async function detectClickHouseFeatures(
  executor: ClickHouseExecutor,
): Promise<ClickHouseFeatures> {
  const rows = await executor.queryRows<{ v: string }>("SELECT version() AS v");
  return featuresOf(String(rows[0]?.v ?? ""));
}
