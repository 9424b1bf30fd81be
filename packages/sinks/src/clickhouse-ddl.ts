import { type Duration, parseDuration } from "@sluice/schema";
import { type ClickHouseFeatures, featuresOf } from "./clickhouse-features.js";
import { qualifiedTable, quoteIdentifier } from "./clickhouse-identifier.js";
import { SinkError } from "./sink-error.js";

const CURRENT = featuresOf("26.0");

/** A JSON Schema node, as far as the DDL helpers read it. */
interface SchemaNode {
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  items?: SchemaNode;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  minimum?: number;
  exclusiveMinimum?: number;
}

/**
 * Options of {@link eventTableSql}.
 *
 * @since 0.1.0
 */
export interface EventTableOptions {
  /** Table name (plain identifier). */
  table: string;
  /** Database name (plain identifier). */
  database?: string;
  /** The event's JSON Schema (an object schema; `UserEvent.jsonSchema`). */
  schema: object;
  /** Event-time column (a required `date-time` string). @defaultValue the first required `date-time` property */
  timestampColumn?: string;
  /** User column, second in ORDER BY. @defaultValue "user_id" */
  userColumn?: string;
  /** Event-type column, first in ORDER BY. @defaultValue "event_type" when present */
  typeColumn?: string;
  /** How long rows stay in the hot tier. @defaultValue '7d' */
  hotTtl?: Duration;
  /**
   * Volume rows move to after `hotTtl` (`TTL … TO VOLUME`), with
   * `storagePolicy`. Without it, rows are deleted after `hotTtl`.
   */
  coldVolume?: string;
  /** Storage policy holding the hot and cold volumes, e.g. "hot_cold". */
  storagePolicy?: string;
  /**
   * Column with each event's unique id (e.g. `"event_id"`). The table then
   * becomes a ReplacingMergeTree whose ORDER BY ends with this column, so
   * events re-sent after a crash (in batches cut differently than before,
   * which dedup tokens cannot catch) collapse on merge and read exactly with
   * `FINAL`. Without it: plain MergeTree, exact under retries only.
   */
  replaceBy?: string;
  /** Server features; DDL degrades for old servers. @defaultValue current ClickHouse */
  features?: ClickHouseFeatures;
}

function types(node: SchemaNode): string[] {
  if (Array.isArray(node.type)) return node.type;
  if (typeof node.type === "string") return [node.type];
  if (node.enum) return [...new Set(node.enum.map((v) => (v === null ? "null" : typeof v)))];
  if (node.const !== undefined) return [typeof node.const];
  return [];
}

function baseType(node: SchemaNode, f: ClickHouseFeatures, name: string): string {
  const t = types(node).filter((x) => x !== "null");
  const only = t.length === 1 ? t[0] : undefined;
  if (only === "string") {
    if (node.format === "date-time")
      return f.dateTime64 ? "DateTime64(3, 'UTC')" : "DateTime('UTC')";
    if (node.format === "date") return "Date";
    if ((node.enum || node.const !== undefined) && f.lowCardinality)
      return "LowCardinality(String)";
    return "String";
  }
  if (only === "integer") {
    const min = node.minimum ?? node.exclusiveMinimum;
    return min !== undefined && min >= 0 ? "UInt64" : "Int64";
  }
  if (only === "number") return "Float64";
  if (only === "boolean") return f.bool ? "Bool" : "UInt8";
  if (only === "array") {
    const inner = node.items ? baseType(node.items, f, `${name}[]`) : "String";
    return `Array(${inner})`;
  }
  // objects, unions and untyped values are stored as their JSON text
  return "String";
}

function columnType(
  node: SchemaNode,
  required: boolean,
  f: ClickHouseFeatures,
  name: string,
): string {
  const base = baseType(node, f, name);
  const nullable = !required || types(node).includes("null");
  if (!nullable || base.startsWith("Array(")) return base;
  if (base === "LowCardinality(String)") return "LowCardinality(Nullable(String))";
  return `Nullable(${base})`;
}

/**
 * The columns {@link eventTableSql} derives from a JSON Schema: name and
 * ClickHouse type, in the schema's property order.
 *
 * @param schema - an object JSON Schema
 * @param features - server features @defaultValue current ClickHouse
 * @returns `[name, type]` pairs
 * @throws SinkError `SINK_INVALID_OPTIONS` when the schema has no properties; `SINK_INVALID_IDENTIFIER` for a property that is not a plain identifier
 * @example
 * ```ts
 * schemaColumns({ type: "object", properties: { ts: { type: "string", format: "date-time" } }, required: ["ts"] })
 * // [["ts", "DateTime64(3, 'UTC')"]]
 * ```
 * @since 0.1.0
 */
export function schemaColumns(
  schema: object,
  features: ClickHouseFeatures = CURRENT,
): Array<[string, string]> {
  const s = schema as SchemaNode;
  if (!s.properties || typeof s.properties !== "object") {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      "schema must be an object JSON Schema with properties",
    );
  }
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties).map(([name, node]) => {
    quoteIdentifier(name, "column");
    return [name, columnType(node, required.has(name), features, name)];
  });
}

/**
 * `CREATE TABLE IF NOT EXISTS` for raw events, derived from the event's JSON
 * Schema: MergeTree (ReplacingMergeTree with `replaceBy`) partitioned by day of the event time, ordered by
 * (event type, user, event time) so per-type and per-user queries read few
 * granules, a TTL for the hot tier (delete, or move to `coldVolume`), and
 * deduplication of retried inserts (`non_replicated_deduplication_window`).
 * Types: `DateTime64(3, 'UTC')` for `date-time`, `LowCardinality(String)` for
 * enums, `Nullable` only for optional or nullable fields, JSON text for
 * objects. On old servers (see {@link ClickHouseFeatures}) it falls back to
 * `DateTime`, `String` and no TTL.
 *
 * @param options - table, schema and tiering
 * @returns one SQL statement
 * @throws SinkError `SINK_INVALID_IDENTIFIER` for a bad name; `SINK_INVALID_OPTIONS` when the time, user or type column is missing or optional
 * @example
 * ```ts
 * await exec.command(eventTableSql({ table: "events", schema: UserEvent.jsonSchema }));
 * ```
 * @since 0.1.0
 */
export function eventTableSql(options: EventTableOptions): string {
  const f = options.features ?? CURRENT;
  const target = qualifiedTable(options.table, options.database);
  const s = options.schema as SchemaNode;
  const columns = schemaColumns(s, f);
  const required = new Set(s.required ?? []);
  const props = s.properties ?? {};
  const ts =
    options.timestampColumn ??
    Object.keys(props).find((k) => required.has(k) && props[k]?.format === "date-time");
  const mustBeKey = (col: string | undefined, what: string): string => {
    if (col === undefined || !(col in props)) {
      throw new SinkError(
        "SINK_INVALID_OPTIONS",
        `${what} ${JSON.stringify(col)} is not a property of the schema; pass ${what}`,
      );
    }
    if (!required.has(col) || types(props[col]!).includes("null")) {
      throw new SinkError(
        "SINK_INVALID_OPTIONS",
        `${what} ${JSON.stringify(col)} must be required and non-null: sorting keys cannot be Nullable`,
      );
    }
    return quoteIdentifier(col, "column");
  };
  const tsCol = mustBeKey(ts, "timestampColumn");
  const userCol = mustBeKey(options.userColumn ?? "user_id", "userColumn");
  const typeName = options.typeColumn ?? ("event_type" in props ? "event_type" : undefined);
  const order = typeName ? [mustBeKey(typeName, "typeColumn"), userCol, tsCol] : [userCol, tsCol];
  if (options.replaceBy !== undefined) order.push(mustBeKey(options.replaceBy, "replaceBy"));
  const engine = options.replaceBy !== undefined ? "ReplacingMergeTree" : "MergeTree";
  let hotMs: number;
  try {
    hotMs = parseDuration(options.hotTtl ?? "7d", "hotTtl");
  } catch (err) {
    throw new SinkError("SINK_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
  const hotSeconds = Math.max(1, Math.round(hotMs / 1000));
  const lines = columns.map(([n, t]) => `  ${quoteIdentifier(n)} ${t}`);
  let sql = `CREATE TABLE IF NOT EXISTS ${target} (\n${lines.join(",\n")}\n)\nENGINE = ${engine}\nPARTITION BY toDate(${tsCol})\nORDER BY (${order.join(", ")})`;
  if (f.ttl) {
    const asDateTime = f.dateTime64 ? `toDateTime(${tsCol})` : tsCol;
    const action =
      options.coldVolume !== undefined
        ? ` TO VOLUME '${quoteIdentifier(options.coldVolume, "coldVolume").slice(1, -1)}'`
        : " DELETE";
    sql += `\nTTL ${asDateTime} + INTERVAL ${hotSeconds} SECOND${action}`;
  }
  const settings: string[] = [];
  if (f.nonReplicatedDeduplication) settings.push("non_replicated_deduplication_window = 1000");
  if (options.storagePolicy !== undefined) {
    settings.push(
      `storage_policy = '${quoteIdentifier(options.storagePolicy, "storagePolicy").slice(1, -1)}'`,
    );
  }
  if (settings.length > 0) sql += `\nSETTINGS ${settings.join(", ")}`;
  return sql;
}

/**
 * Options of {@link windowResultTableSql}.
 *
 * @since 0.1.0
 */
export interface WindowResultTableOptions {
  /** Table name (plain identifier). */
  table: string;
  /** Database name (plain identifier). */
  database?: string;
  /** Server features; old servers store window bounds as UInt64 epoch ms. @defaultValue current ClickHouse */
  features?: ClickHouseFeatures;
  /** Delete results older than this (by window end); none when omitted or unsupported. */
  ttl?: Duration;
}

/**
 * `CREATE TABLE IF NOT EXISTS` for window results: a ReplacingMergeTree keyed
 * by the window (key, window_start, window_end) with `emit_seq` as the
 * version, so replays and later emissions of the same window collapse to the
 * latest. A retraction (a session merged into another) is the window's last
 * emission, with `deleted = 1`: it wins the collapse and marks the window
 * gone, so queries keep `deleted = 0` (the same on every server version;
 * 18.16 has no `is_deleted` engine parameter nor lightweight `DELETE`).
 * Rows come from {@link windowResultRow}. Read with `FINAL` (or
 * `argMax(…, emit_seq)`), filtering on `deleted` after the collapse:
 *
 * ```sql
 * SELECT key, window_start, window_end, value FROM (SELECT * FROM window_results FINAL) WHERE deleted = 0
 * SELECT key, window_start, window_end, argMax(value, emit_seq) AS value FROM window_results
 * GROUP BY key, window_start, window_end HAVING argMax(deleted, emit_seq) = 0
 * ```
 *
 * @param options - table name and server features
 * @returns one SQL statement
 * @throws SinkError `SINK_INVALID_IDENTIFIER` for a bad name
 * @example
 * ```ts
 * await exec.command(windowResultTableSql({ table: "clicks_per_minute" }));
 * ```
 * @since 0.1.0
 */
export function windowResultTableSql(options: WindowResultTableOptions): string {
  const f = options.features ?? CURRENT;
  const target = qualifiedTable(options.table, options.database);
  const time = f.dateTime64 ? "DateTime64(3, 'UTC')" : "UInt64";
  const day = f.dateTime64
    ? "toDate(window_start)"
    : "toDate(toDateTime(intDiv(window_start, 1000)))";
  let sql = `CREATE TABLE IF NOT EXISTS ${target} (
  key String,
  window_start ${time},
  window_end ${time},
  emit_seq UInt32,
  final UInt8,
  deleted UInt8 DEFAULT 0,
  partition UInt32,
  id String,
  value String
)
ENGINE = ReplacingMergeTree(emit_seq)
PARTITION BY ${day}
ORDER BY (key, window_start, window_end)`;
  if (options.ttl !== undefined && f.ttl) {
    const seconds = Math.max(1, Math.round(parseDuration(options.ttl, "ttl") / 1000));
    const end = f.dateTime64 ? "toDateTime(window_end)" : "toDateTime(intDiv(window_end, 1000))";
    sql += `\nTTL ${end} + INTERVAL ${seconds} SECOND DELETE`;
  }
  if (f.nonReplicatedDeduplication) sql += "\nSETTINGS non_replicated_deduplication_window = 1000";
  return sql;
}

/**
 * A window result as produced by `@sluice/windowing` (structural; this
 * package does not import the runtime).
 *
 * @typeParam V - the aggregate value
 * @since 0.1.0
 */
export interface WindowResultLike<V = unknown> {
  key: string;
  windowStart: number;
  windowEnd: number;
  value: V;
  final: boolean;
  emitSeq: number;
  partition: number;
  id: string;
  /** True on a retraction: the window no longer exists (its value is `null`). */
  retracted?: boolean;
}

/**
 * Maps a window result to a row of {@link windowResultTableSql}'s table:
 * window bounds as epoch ms, the value as JSON text. A retraction becomes a
 * row with `deleted: 1` (and value `null`) that supersedes the window's
 * earlier rows; other rows leave `deleted` to its default 0, so tables made
 * before retractions existed still take them. Pass as the sink's `toRow`.
 *
 * @param result - a window result
 * @returns the row
 * @throws nothing
 * @example
 * ```ts
 * createClickHouseSink({ url, table: "clicks_per_minute", toRow: windowResultRow });
 * ```
 * @since 0.1.0
 */
export function windowResultRow(result: WindowResultLike): Record<string, unknown> {
  return {
    key: result.key,
    window_start: result.windowStart,
    window_end: result.windowEnd,
    emit_seq: result.emitSeq,
    final: result.final ? 1 : 0,
    partition: result.partition,
    id: result.id,
    value: JSON.stringify(result.value),
    ...(result.retracted === true ? { deleted: 1 } : {}),
  };
}
