import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { type Duration, parseDuration } from "@sluice/schema";
import {
  type ChdbSessionLike,
  type ClickHouseExecutor,
  fromChdbSession,
  fromClickHouseClient,
} from "./clickhouse-executor.js";
import { type ClickHouseFeatures, detectClickHouseFeatures } from "./clickhouse-features.js";
import { qualifiedTable } from "./clickhouse-identifier.js";
import { BatchingSink, type SinkDriver } from "./internal/batching-sink.js";
import { classifyClickHouse } from "./internal/clickhouse-errors.js";
import { batchToken } from "./internal/identity.js";
import type { DisposableSink } from "./sink.js";
import { SinkError } from "./sink-error.js";
import type { BatchingOptions } from "./sink-options.js";

/**
 * Options of {@link createClickHouseSink}. Give exactly one of `client`,
 * `chdb`, `executor` or `url`.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface ClickHouseSinkOptions<R> extends BatchingOptions<R> {
  /** A `@clickhouse/client` client; not closed by the sink. */
  client?: ClickHouseClient;
  /** An embedded chDB `Session`; not closed by the sink. */
  chdb?: ChdbSessionLike;
  /** Any {@link ClickHouseExecutor}; not closed by the sink. */
  executor?: ClickHouseExecutor;
  /** Server URL (`http://user:pass@host:8123`); the sink creates and closes its client. */
  url?: string;
  /** Target table (plain identifier). */
  table: string;
  /** Database (plain identifier). @defaultValue the connection's default */
  database?: string;
  /** Maps a record to a row (column → value). @defaultValue the record itself */
  toRow?: (record: R) => Record<string, unknown>;
  /**
   * Deduplication of retried inserts with `insert_deduplication_token`
   * (a digest of the batch's record identities): `auto` uses it when the
   * server supports it (22.2+), `require` fails (`SINK_UNSUPPORTED`) when it
   * does not, `off` never sends it.
   * @defaultValue "auto"
   */
  deduplication?: "auto" | "require" | "off";
  /**
   * With `url`: idle keep-alive sockets are dropped after this, below the
   * server's `keep_alive_timeout` (3 s by default) so no request is sent
   * on a socket the server is closing.
   * @defaultValue 2000
   */
  keepAliveIdleMs?: Duration;
  /** With `url`: HTTP request timeout. @defaultValue '30s' */
  requestTimeoutMs?: Duration;
  /**
   * Inserts in flight at once. Acknowledgements (and so `flush`) still
   * follow write order; every batch keeps its own deduplication token.
   * @defaultValue 2
   */
  maxInFlightBatches?: number;
  /** Extra settings sent with every insert, e.g. `{ date_time_input_format: "best_effort" }`. */
  insertSettings?: Record<string, string | number>;
  /**
   * How long an insert answered "unknown table" (code 60) or "unknown
   * database" (81) is retried before the sink fails with `SINK_REJECTED`.
   * A server shutting down detaches its tables, and one starting attaches
   * them, while still answering queries: a restart then looks like a missing
   * table for a few seconds. The time counts from the first such answer in a
   * row (other failures in between, such as a refused connection while the
   * server is down, start it over). `0` fails at the first answer.
   * @defaultValue '1m'
   */
  missingTableRetryMs?: Duration;
}

/**
 * A {@link DisposableSink} writing to ClickHouse, with what it learned about
 * the server.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface ClickHouseSink<R> extends DisposableSink<R> {
  /** Server features, known once the first batch was sent. */
  readonly serverFeatures: ClickHouseFeatures | undefined;
  /** Rows accepted but not yet acknowledged. */
  readonly bufferedRows: number;
  /**
   * Whether the sink can deliver: open, not failed, and the destination
   * answers a round trip (`SELECT 1` / `PING`). Never throws.
   *
   * @returns `{ ok, detail }`
   */
  health(): Promise<{ ok: boolean; detail: string }>;
}

/** A record's JSONEachRow line. */
type Payload = string;

/**
 * Creates a sink that batches records into JSONEachRow inserts on a
 * ClickHouse server (`@clickhouse/client`) or on embedded chDB.
 *
 * Batches are cut by `maxBatchRows`, `maxBatchBytes` and `maxDelayMs` from
 * the buffer in write order, and a batch never changes once cut: every retry
 * sends the identical block with the same `insert_deduplication_token` (the
 * digest of its records' identities), so a retry after a lost acknowledgement
 * does not duplicate rows. Retryable errors (connection refused or reset,
 * timeouts, `TOO_MANY_PARTS` with a 10× slower backoff, overload) are retried
 * with exponential backoff and jitter while the buffer fills and then holds
 * writers back; an unknown table or database is retried for
 * `missingTableRetryMs` (a restarting server answers so for a moment), then
 * fails the sink. Rows the server refuses (parse errors, type mismatches) are
 * isolated by bisecting the batch and handed to `deadLetter`.
 *
 * @typeParam R - the record type
 * @param options - connection, table, batching and retry
 * @returns the sink, open
 * @throws SinkError `SINK_INVALID_OPTIONS`, `SINK_INVALID_IDENTIFIER`
 * @example
 * ```ts
 * const sink = createClickHouseSink({ url: "http://127.0.0.1:8123", table: "clicks_per_minute", toRow: windowResultRow });
 * await sink.write(results);
 * await sink.flush();
 * ```
 * @since 0.1.0
 */
export function createClickHouseSink<R>(options: ClickHouseSinkOptions<R>): ClickHouseSink<R> {
  if (typeof options !== "object" || options === null) {
    throw new SinkError("SINK_INVALID_OPTIONS", "createClickHouseSink expects an options object");
  }
  const given = ["client", "chdb", "executor", "url"].filter(
    (k) => (options as unknown as Record<string, unknown>)[k] !== undefined,
  );
  if (given.length !== 1) {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      `give exactly one of client, chdb, executor or url; got ${given.length ? given.join(", ") : "none"}`,
    );
  }
  qualifiedTable(options.table, options.database);
  const dedup = options.deduplication ?? "auto";
  if (!["auto", "require", "off"].includes(dedup)) {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      `deduplication must be auto, require or off; got ${JSON.stringify(dedup)}`,
    );
  }
  if (options.toRow !== undefined && typeof options.toRow !== "function") {
    throw new SinkError("SINK_INVALID_OPTIONS", "toRow must be a function");
  }
  let missingTableRetryMs: number;
  try {
    missingTableRetryMs = parseDuration(options.missingTableRetryMs ?? "1m", "missingTableRetryMs");
  } catch (err) {
    throw new SinkError("SINK_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
  const target =
    options.database === undefined ? options.table : `${options.database}.${options.table}`;
  const missingTable = {
    retryForMs: missingTableRetryMs,
    advice: `table ${target} does not exist on the server: create it (eventTableSql and windowResultTableSql give DDL) or correct table / database; if the server only restarted and attaches its tables slowly, raise missingTableRetryMs (now ${missingTableRetryMs} ms)`,
  };
  let executor: ClickHouseExecutor;
  if (options.url !== undefined) {
    let keepAlive: number;
    let timeout: number;
    try {
      keepAlive = parseDuration(options.keepAliveIdleMs ?? 2000, "keepAliveIdleMs");
      timeout = parseDuration(options.requestTimeoutMs ?? "30s", "requestTimeoutMs");
    } catch (err) {
      throw new SinkError("SINK_INVALID_OPTIONS", (err as Error).message, { cause: err });
    }
    const client = createClient({
      url: options.url,
      request_timeout: timeout,
      keep_alive: { enabled: true, idle_socket_ttl: keepAlive },
      log: { level: ClickHouseLogLevel.OFF },
    });
    executor = fromClickHouseClient(client, true);
  } else if (options.client !== undefined) {
    executor = fromClickHouseClient(options.client, false);
  } else if (options.chdb !== undefined) {
    executor = fromChdbSession(options.chdb);
  } else {
    executor = options.executor!;
  }
  const toRow = options.toRow ?? ((r: R) => r as unknown as Record<string, unknown>);
  const insertSettings = { ...(options.insertSettings ?? {}) };
  let features: ClickHouseFeatures | undefined;
  let detecting: Promise<ClickHouseFeatures> | undefined;

  const maxInFlight = options.maxInFlightBatches ?? 2;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 16) {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      `maxInFlightBatches must be an integer from 1 to 16; got ${JSON.stringify(maxInFlight)}`,
    );
  }
  const driver: SinkDriver<R, Payload> = {
    kind: "clickhouse",
    maxInFlight,
    prepare(record) {
      let line: string;
      try {
        line = JSON.stringify(toRow(record));
      } catch (err) {
        throw new SinkError(
          "SINK_INVALID_RECORD",
          `record cannot be serialized: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      if (typeof line !== "string" || !line.startsWith("{")) {
        throw new SinkError("SINK_INVALID_RECORD", "toRow must return an object");
      }
      return line;
    },
    sizeOf: (line) => line.length + 1,
    async send(batch) {
      if (!features) {
        detecting ??= detectClickHouseFeatures(executor).finally(() => {
          detecting = undefined;
        });
        features = await detecting;
        if (dedup === "require" && !features.deduplicationToken) {
          throw new SinkError(
            "SINK_UNSUPPORTED",
            `ClickHouse ${features.version} has no insert_deduplication_token (22.2+); use deduplication: "auto" and a ReplacingMergeTree table`,
          );
        }
      }
      const settings: Record<string, string | number> = { ...insertSettings };
      if (dedup !== "off" && features.deduplicationToken) {
        settings.insert_deduplicate = 1;
        settings.insert_deduplication_token = batchToken(batch.map((e) => e.id));
      }
      const lines = new Array<string>(batch.length);
      for (let i = 0; i < batch.length; i++) lines[i] = batch[i]!.payload;
      const body = `${lines.join("\n")}\n`;
      await executor.insertJsonEachRow({
        table: options.table,
        ...(options.database === undefined ? {} : { database: options.database }),
        body,
        settings,
      });
      return undefined;
    },
    classify: (err) => classifyClickHouse(err, missingTable),
    release: () => executor.close(),
    ping: async () => {
      await executor.queryRows("SELECT 1 AS ok");
    },
  };

  const sink = new BatchingSink<R, Payload>(driver, options, {
    name: options.table,
    maxBatchRows: 10_000,
  });
  return Object.defineProperty(sink, "serverFeatures", {
    get: () => features,
    enumerable: true,
  }) as BatchingSink<R, Payload> & ClickHouseSink<R>;
}
