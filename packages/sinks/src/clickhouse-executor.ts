import { Readable } from "node:stream";
import type { ClickHouseClient } from "@clickhouse/client";

/**
 * What the ClickHouse sink needs from a ClickHouse connection: a server over
 * HTTP through `@clickhouse/client`, or embedded chDB. Build one with
 * {@link fromClickHouseClient} or {@link fromChdbSession}, or implement it for
 * another transport.
 *
 * @since 0.1.0
 */
export interface ClickHouseExecutor {
  /** `http` for a server, `chdb` for the embedded engine. */
  readonly kind: "http" | "chdb" | (string & {});
  /**
   * Inserts a JSONEachRow body.
   *
   * @param params - validated target (`db.table` unquoted), body, per-insert settings
   */
  insertJsonEachRow(params: {
    database?: string;
    table: string;
    body: string;
    settings: Record<string, string | number>;
  }): Promise<void>;
  /** Runs a statement that returns no rows (DDL). */
  command(sql: string): Promise<void>;
  /** Runs a query and returns its rows (JSONEachRow). */
  queryRows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Releases the connection when the executor owns it. */
  close(): Promise<void>;
}

/**
 * Wraps a `@clickhouse/client` client. The sink does not close a client it
 * was given; it does close one it created from `url`.
 *
 * @param client - a client from `createClient`
 * @param owned - close the client in `close()` @defaultValue false
 * @returns an executor over HTTP
 * @throws nothing
 * @example
 * ```ts
 * const exec = fromClickHouseClient(createClient({ url: "http://127.0.0.1:8123" }));
 * ```
 * @since 0.1.0
 */
export function fromClickHouseClient(client: ClickHouseClient, owned = false): ClickHouseExecutor {
  return {
    kind: "http",
    async insertJsonEachRow({ database, table, body, settings }) {
      const target = database === undefined ? `\`${table}\`` : `\`${database}\`.\`${table}\``;
      const result = await client.exec({
        query: `INSERT INTO ${target} FORMAT JSONEachRow`,
        values: Readable.from([body], { objectMode: false }),
        clickhouse_settings: settings,
      });
      result.stream.resume();
      await new Promise<void>((resolve, reject) => {
        result.stream.once("end", resolve);
        result.stream.once("close", resolve);
        result.stream.once("error", reject);
      });
    },
    async command(sql) {
      await client.command({ query: sql });
    },
    async queryRows<T>(sql: string) {
      const rs = await client.query({ query: sql, format: "JSONEachRow" });
      return rs.json<T>();
    },
    async close() {
      if (owned) await client.close();
    },
  };
}

/**
 * The part of a chDB `Session` (npm `chdb`) the sink uses; `chdb` itself is an
 * optional peer dependency and is never imported by this package.
 *
 * @since 0.1.0
 */
export interface ChdbSessionLike {
  /** Runs SQL off the event loop. */
  queryAsync(sql: string, opts?: { format?: string }): Promise<{ text(): string }>;
  /** Raw-bytes insert. */
  insert(params: {
    table: string;
    values: Buffer;
    format: "JSONEachRow";
    settings?: Record<string, string | number | boolean>;
  }): Promise<unknown>;
}

/**
 * Wraps an embedded chDB session (a current ClickHouse engine in-process), so
 * the same ClickHouse sink runs without a server. The session stays open when
 * the sink closes; close it yourself.
 *
 * @param session - `new Session(dir)` from `chdb`
 * @returns an executor over chDB
 * @throws nothing
 * @example
 * ```ts
 * import { Session } from "chdb";
 * const sink = createClickHouseSink({ executor: fromChdbSession(new Session("./ch")), table: "events" });
 * ```
 * @since 0.1.0
 */
export function fromChdbSession(session: ChdbSessionLike): ClickHouseExecutor {
  return {
    kind: "chdb",
    async insertJsonEachRow({ database, table, body, settings }) {
      await session.insert({
        table: database === undefined ? table : `${database}.${table}`,
        values: Buffer.from(body),
        format: "JSONEachRow",
        settings,
      });
    },
    async command(sql) {
      await session.queryAsync(sql);
    },
    async queryRows<T>(sql: string) {
      const text = (await session.queryAsync(sql, { format: "JSONEachRow" })).text();
      return text
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as T);
    },
    async close() {},
  };
}
