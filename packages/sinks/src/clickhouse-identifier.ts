import { SinkError } from "./sink-error.js";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * Checks that a table, database or column name is a plain identifier
 * (`[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters) and returns it quoted
 * with backticks. Names are never escaped into SQL: anything else is refused.
 *
 * @param name - the identifier
 * @param what - what the name is, for the error message
 * @returns the identifier quoted for ClickHouse SQL, e.g. `` `events` ``
 * @throws SinkError `SINK_INVALID_IDENTIFIER` when the name is not a plain identifier
 * @example
 * ```ts
 * quoteIdentifier("events")          // "`events`"
 * quoteIdentifier("x`; DROP TABLE")  // throws SINK_INVALID_IDENTIFIER
 * ```
 * @since 0.1.0
 */
export function quoteIdentifier(name: string, what = "identifier"): string {
  if (typeof name !== "string" || !IDENTIFIER.test(name)) {
    throw new SinkError(
      "SINK_INVALID_IDENTIFIER",
      `${what} ${JSON.stringify(name)} is not a plain identifier: use letters, digits and _ (not starting with a digit), at most 128 characters`,
    );
  }
  return `\`${name}\``;
}

/**
 * A validated, quoted table reference: `` `db`.`table` `` or `` `table` ``.
 *
 * @param table - table name
 * @param database - database name, when not the connection's default
 * @returns the quoted reference
 * @throws SinkError `SINK_INVALID_IDENTIFIER` when a name is not a plain identifier
 * @example
 * ```ts
 * qualifiedTable("events", "analytics") // "`analytics`.`events`"
 * ```
 * @since 0.1.0
 */
export function qualifiedTable(table: string, database?: string): string {
  const t = quoteIdentifier(table, "table");
  return database === undefined ? t : `${quoteIdentifier(database, "database")}.${t}`;
}
