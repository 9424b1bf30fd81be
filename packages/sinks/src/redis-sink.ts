import { type Duration, parseDuration } from "@sluice/schema";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Classified } from "./internal/batching-sink.js";
import { BatchingSink, type RecordRejection, type SinkDriver } from "./internal/batching-sink.js";
import { FENCE_SCRIPT } from "./internal/redis-fence.js";
import type { DisposableSink } from "./sink.js";
import { SinkError } from "./sink-error.js";
import type { BatchingOptions } from "./sink-options.js";

/**
 * Commands a custom Redis write may use.
 *
 * @since 0.1.0
 */
export type RedisCommandName =
  | "SET"
  | "DEL"
  | "INCRBY"
  | "INCRBYFLOAT"
  | "HSET"
  | "HDEL"
  | "HINCRBY"
  | "HINCRBYFLOAT"
  | "ZADD"
  | "ZINCRBY"
  | "ZREM"
  | "SADD"
  | "SREM"
  | "RPUSH"
  | "LPUSH"
  | "LTRIM"
  | "PFADD"
  | "XADD"
  | "PUBLISH";

const ALLOWED = new Set<string>([
  "SET",
  "DEL",
  "INCRBY",
  "INCRBYFLOAT",
  "HSET",
  "HDEL",
  "HINCRBY",
  "HINCRBYFLOAT",
  "ZADD",
  "ZINCRBY",
  "ZREM",
  "SADD",
  "SREM",
  "RPUSH",
  "LPUSH",
  "LTRIM",
  "PFADD",
  "XADD",
  "PUBLISH",
]);

/**
 * One Redis command produced for a record. `key` is relative: the sink adds
 * `keyPrefix` (and, with hash tags, the partition's tag). For `PUBLISH`, `key`
 * is the channel.
 *
 * @since 0.1.0
 */
export interface RedisCommand {
  /** The command. */
  command: RedisCommandName;
  /** The key (or channel), before the prefix. */
  key: string;
  /** Arguments after the key. */
  args: ReadonlyArray<string | number>;
}

/**
 * What the sink does with each record: a built-in mode or a function that
 * returns the commands for one record.
 *
 * - `hash`: `HSET key field value …` (fields from `fields`)
 * - `counter`: `INCRBY`/`INCRBYFLOAT key amount`
 * - `leaderboard`: `ZADD board score member` (or `ZINCRBY` with `scoreMode: "increment"`)
 * - `stream`: `XADD key [MAXLEN ~ n] * data <json>`
 * - `publish`: `PUBLISH channel <json>` for live consumers
 *
 * A window result with `retracted: true` (a session that merged into
 * another, from `@sluice/windowing`) removes its window: `hash` → `DEL key`,
 * `leaderboard` → `ZREM board member`; `counter` and `leaderboard` with
 * `scoreMode: "increment"` write nothing (a retraction carries no value to
 * subtract); `stream` and `publish` pass it on; a function receives it like
 * any record (check `record.retracted`).
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export type RedisWrite<R> =
  | "hash"
  | "counter"
  | "leaderboard"
  | "stream"
  | "publish"
  | ((record: R) => readonly RedisCommand[]);

/**
 * Options of {@link createRedisSink}. Give exactly one of `redis` or `url`.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface RedisSinkOptions<R> extends BatchingOptions<R> {
  /** An ioredis client or Cluster; not closed by the sink. */
  redis?: Redis | Cluster;
  /** `redis://host:port/db`; the sink creates and closes its client. */
  url?: string;
  /** What to write. */
  write: RedisWrite<R>;
  /** Prefix of every key and channel. @defaultValue "sluice:" */
  keyPrefix?: string;
  /** Expire touched keys this long after the last write; none when omitted. */
  ttlMs?: Duration;
  /** Namespace of the fences (one per job and partition). @defaultValue the sink's name */
  jobId?: string;
  /**
   * Put every key in its partition's hash slot (`{job:partition}`), so the
   * script touching a key and its fence runs on one Cluster node. Keys then
   * differ per partition (read a leaderboard with `ZUNION`).
   * @defaultValue true with a Cluster, false otherwise
   */
  hashTags?: boolean;
  /** Source partition of a record. @defaultValue `record.partition` */
  partition?: (record: R) => number;
  /**
   * Fencing sequence of a record: increases per partition in write order
   * (the source offset). Records sharing a partition and sequence must be
   * written together, one after another. Return `undefined` for a record
   * without one: it is fenced by its identity instead (see `identityTtlMs`).
   * @defaultValue `record.offset` when present, else identity fencing
   */
  sequence?: (record: R) => number | undefined;
  /**
   * How long the marker of an identity-fenced record (one without a
   * sequence, such as a window result) is kept; a replay later than this
   * would apply again. One small key per record.
   * @defaultValue '1d'
   */
  identityTtlMs?: Duration;
  /** Key (built-in modes). @defaultValue `record.key`; "leaderboard" / "results" for the leaderboard, stream and publish modes */
  key?: (record: R) => string;
  /** `hash`: the fields. @defaultValue the fields of `record.value` (objects) or `{ value }` */
  fields?: (record: R) => Record<string, string | number>;
  /** `counter`: the increment. @defaultValue `record.value` when a number, else 1 */
  amount?: (record: R) => number;
  /** `leaderboard`: the member. @defaultValue `record.key` */
  member?: (record: R) => string;
  /** `leaderboard`: the score. @defaultValue `record.value` when a number, else 1 */
  score?: (record: R) => number;
  /** `leaderboard`: replace the score (`ZADD`) or add to it (`ZINCRBY`). @defaultValue "set" */
  scoreMode?: "set" | "increment";
  /** `stream`: approximate cap on the stream length (`MAXLEN ~`). */
  streamMaxLength?: number;
}

/**
 * A {@link DisposableSink} writing to Redis.
 *
 * @typeParam R - the record type
 * @since 0.1.0
 */
export interface RedisSink<R> extends DisposableSink<R> {
  /** Rows accepted but not yet acknowledged. */
  readonly bufferedRows: number;
  /**
   * Whether the sink can deliver: open, not failed, and the destination
   * answers a round trip (`SELECT 1` / `PING`). Never throws.
   *
   * @returns `{ ok, detail }`
   */
  health(): Promise<{ ok: boolean; detail: string }>;
  /** The Redis key holding the fence of a partition. */
  fenceKey(partition: number): string;
}

interface Payload {
  /** The record's entry in the script's JSON argument. */
  json: string;
  /** Fencing sequence, or undefined for identity fencing. */
  seq: number | undefined;
  /** Keys it touches (declared to Redis for Cluster routing). */
  keys: string[];
  partition: number;
}

type FenceClient = Redis & {
  sluiceFence(numKeys: number, ...args: Array<string | number>): Promise<unknown[]>;
};

const RETRYABLE_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS|OOM)\b/;

function classifyRedis(err: unknown): Classified {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; command?: unknown };
  // ioredis puts the failed command on its error; AUTH / HELLO carry the password.
  const cmd = e?.command as { name?: unknown; args?: unknown } | undefined;
  if (/^(auth|hello)$/i.test(String(cmd?.name)) && Array.isArray(cmd?.args)) {
    cmd.args = cmd.args.map(() => "[redacted]");
  }
  const message = typeof e?.message === "string" ? e.message : String(err);
  if (typeof e?.code === "string" && e.code.startsWith("SINK_")) {
    return { retryable: false, fatal: true, code: e.code };
  }
  if (e?.name === "ReplyError") {
    const word = /^[A-Z]+/.exec(message)?.[0] ?? "ERR";
    const retryable = RETRYABLE_REPLY.test(message);
    return { retryable, fatal: !retryable, code: `REDIS_${word}` };
  }
  return { retryable: true, code: typeof e?.code === "string" ? e.code : "REDIS_UNREACHABLE" };
}

const scalar = (v: unknown): string =>
  typeof v === "string"
    ? v
    : typeof v === "number" || typeof v === "boolean"
      ? String(v)
      : JSON.stringify(v);

function field<T>(record: unknown, name: string): T | undefined {
  return typeof record === "object" && record !== null
    ? ((record as Record<string, unknown>)[name] as T | undefined)
    : undefined;
}

function numberOr(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

/**
 * Creates a sink that writes records to Redis (standalone or Cluster, through
 * ioredis) in pipelined, batched Lua calls, made idempotent by a fencing
 * sequence per (job, partition): each partition's slice of a batch runs in
 * one script that applies a record only if its sequence is above the stored
 * fence and advances the fence in the same atomic step. Replays after a
 * crash or a retry after a lost reply leave Redis unchanged — also for
 * counters, `ZINCRBY`, streams and pub/sub, which are not idempotent by
 * themselves. Records without a sequence (window results carry none) are
 * fenced by their identity instead: a marker key per record, set with
 * `NX` in the same script, kept for `identityTtlMs`.
 *
 * @typeParam R - the record type
 * @param options - connection, write mode, keys and batching
 * @returns the sink, open
 * @throws SinkError `SINK_INVALID_OPTIONS`
 * @example
 * ```ts
 * const live = createRedisSink({ url: "redis://127.0.0.1:6379", write: "leaderboard", key: () => "top-users" });
 * await live.write(results);   // results carry partition and offset
 * await live.flush();
 * ```
 * @since 0.1.0
 */
export function createRedisSink<R>(options: RedisSinkOptions<R>): RedisSink<R> {
  if (typeof options !== "object" || options === null) {
    throw new SinkError("SINK_INVALID_OPTIONS", "createRedisSink expects an options object");
  }
  if ((options.redis === undefined) === (options.url === undefined)) {
    throw new SinkError("SINK_INVALID_OPTIONS", "give exactly one of redis or url");
  }
  const mode = options.write;
  if (
    typeof mode !== "function" &&
    !["hash", "counter", "leaderboard", "stream", "publish"].includes(mode as string)
  ) {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      `write must be hash, counter, leaderboard, stream, publish or a function; got ${JSON.stringify(mode)}`,
    );
  }
  const keyPrefix = options.keyPrefix ?? "sluice:";
  if (typeof keyPrefix !== "string") {
    throw new SinkError("SINK_INVALID_OPTIONS", "keyPrefix must be a string");
  }
  let ttlMs = 0;
  let identityTtlMs = 0;
  try {
    ttlMs = options.ttlMs === undefined ? 0 : parseDuration(options.ttlMs, "ttlMs");
    identityTtlMs = Math.max(1, parseDuration(options.identityTtlMs ?? "1d", "identityTtlMs"));
  } catch (err) {
    throw new SinkError("SINK_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
  const name = options.name ?? `${keyPrefix}${typeof mode === "function" ? "custom" : mode}`;
  const jobId = options.jobId ?? name;
  if (typeof jobId !== "string" || jobId === "" || /[{}]/.test(jobId)) {
    throw new SinkError(
      "SINK_INVALID_OPTIONS",
      `jobId must be a non-empty string without { }; got ${JSON.stringify(jobId)}`,
    );
  }
  const owned = options.url !== undefined;
  const redis: Redis | Cluster =
    options.redis ??
    new Redis(options.url!, {
      maxRetriesPerRequest: 2,
      retryStrategy: (times: number) => Math.min(times * 100, 1000),
      lazyConnect: false,
    } satisfies RedisOptions);
  if (owned) redis.on("error", () => {}); // surfaced through command failures
  const isCluster = redis instanceof Cluster;
  const hashTags = options.hashTags ?? isCluster;
  const client = redis as unknown as FenceClient;
  if (typeof (client as Partial<FenceClient>).sluiceFence !== "function") {
    redis.defineCommand("sluiceFence", { lua: FENCE_SCRIPT });
  }

  const scope = (partition: number) =>
    hashTags ? `${keyPrefix}{${jobId}:${partition}}:` : keyPrefix;
  const fenceKey = (partition: number) =>
    hashTags
      ? `${keyPrefix}{${jobId}:${partition}}:fence`
      : `${keyPrefix}fence:${jobId}:${partition}`;

  const partitionOf =
    options.partition ??
    ((r: R) => {
      const p = field<unknown>(r, "partition");
      if (typeof p !== "number" || !Number.isInteger(p) || p < 0) {
        throw new SinkError(
          "SINK_INVALID_RECORD",
          `record has no partition (got ${JSON.stringify(p)}); pass the partition option`,
        );
      }
      return p;
    });
  const sequenceOf =
    options.sequence ??
    ((r: R) => {
      const o = field<unknown>(r, "offset");
      if (typeof o === "string" && /^\d+$/.test(o)) return Number(o);
      return typeof o === "number" ? o : undefined;
    });
  const defaultKey =
    mode === "leaderboard"
      ? "leaderboard"
      : mode === "stream" || mode === "publish"
        ? "results"
        : undefined;
  const keyOf =
    options.key ??
    ((r: R) => {
      const k = field<unknown>(r, "key");
      if (defaultKey !== undefined) return defaultKey;
      if (typeof k !== "string")
        throw new SinkError("SINK_INVALID_RECORD", "record has no string key; pass the key option");
      return k;
    });

  const memberOf = (r: R): string => options.member?.(r) ?? scalar(field(r, "key"));
  const builtIn = (r: R): RedisCommand[] => {
    const value = field<unknown>(r, "value");
    if (field<unknown>(r, "retracted") === true) {
      // A retraction withdraws a window that no longer exists (a session
      // merged into another); the merged session's result comes after it.
      if (mode === "hash") return [{ command: "DEL", key: keyOf(r), args: [] }];
      if (mode === "leaderboard" && options.scoreMode !== "increment")
        return [{ command: "ZREM", key: keyOf(r), args: [memberOf(r)] }];
      // an increment cannot be undone without the value it added
      if (mode === "counter" || mode === "leaderboard") return [];
      // stream and publish pass it on, as it is
    }
    switch (mode) {
      case "hash": {
        const fields =
          options.fields?.(r) ??
          (typeof value === "object" && value !== null && !Array.isArray(value)
            ? (value as Record<string, unknown>)
            : { value });
        const args: string[] = [];
        for (const [f, v] of Object.entries(fields)) args.push(f, scalar(v));
        if (args.length === 0) return [];
        return [{ command: "HSET", key: keyOf(r), args }];
      }
      case "counter": {
        const amount = options.amount?.(r) ?? numberOr(value, 1);
        return [
          {
            command: Number.isInteger(amount) ? "INCRBY" : "INCRBYFLOAT",
            key: keyOf(r),
            args: [amount],
          },
        ];
      }
      case "leaderboard": {
        const score = options.score?.(r) ?? numberOr(value, 1);
        const member = memberOf(r);
        return options.scoreMode === "increment"
          ? [{ command: "ZINCRBY", key: keyOf(r), args: [score, member] }]
          : [{ command: "ZADD", key: keyOf(r), args: [score, member] }];
      }
      case "stream": {
        const cap = options.streamMaxLength;
        const head = cap === undefined ? [] : ["MAXLEN", "~", cap];
        return [
          { command: "XADD", key: keyOf(r), args: [...head, "*", "data", JSON.stringify(r)] },
        ];
      }
      default:
        return [{ command: "PUBLISH", key: keyOf(r), args: [JSON.stringify(r)] }];
    }
  };
  const commandsOf = typeof mode === "function" ? mode : builtIn;

  const driver: SinkDriver<R, Payload> = {
    kind: "redis",
    prepare(record, id) {
      const partition = partitionOf(record);
      const seq = sequenceOf(record);
      if (seq !== undefined && (!Number.isSafeInteger(seq) || seq < 0)) {
        throw new SinkError(
          "SINK_INVALID_RECORD",
          `sequence must be a non-negative safe integer; got ${seq}`,
        );
      }
      const pre = scope(partition);
      const keys: string[] = [];
      // [kind, token, [command, key, ...args], ...] — decoded by the script with cjson
      const item: unknown[] =
        seq === undefined ? ["i", `${pre}applied:${jobId}:${id}`] : ["s", String(seq)];
      if (seq === undefined) keys.push(item[1] as string);
      for (const c of commandsOf(record)) {
        if (!ALLOWED.has(c.command)) {
          throw new SinkError(
            "SINK_INVALID_RECORD",
            `Redis command ${JSON.stringify(c.command)} is not allowed; use one of ${[...ALLOWED].join(", ")}`,
          );
        }
        if (typeof c.key !== "string" || c.key === "") {
          throw new SinkError(
            "SINK_INVALID_RECORD",
            `Redis command ${c.command} needs a non-empty key`,
          );
        }
        const cmd: string[] = [
          c.command,
          c.command === "PUBLISH" ? `${keyPrefix}${c.key}` : `${pre}${c.key}`,
        ];
        for (const arg of c.args) cmd.push(scalar(arg));
        if (c.command !== "PUBLISH") keys.push(cmd[1]!);
        item.push(cmd);
      }
      const json = JSON.stringify(item);
      return { json, keys, partition, seq };
    },
    sizeOf: (p) => p.json.length,
    // A batch applies up to its highest sequence: never split records that share one.
    together: (a, b) => a.seq !== undefined && a.seq === b.seq && a.partition === b.partition,
    async send(batch) {
      const calls: Array<{ indexes: number[]; keys: string[]; argv: string[] }> = [];
      const byPartition = new Map<number, number[]>();
      batch.forEach((e, i) => {
        const list = byPartition.get(e.payload.partition);
        if (list) list.push(i);
        else byPartition.set(e.payload.partition, [i]);
      });
      for (const [partition, indexes] of byPartition) {
        const keys = new Set<string>([fenceKey(partition)]);
        const items = new Array<string>(indexes.length);
        indexes.forEach((i, j) => {
          const p = batch[i]!.payload;
          for (const k of p.keys) keys.add(k);
          items[j] = p.json;
        });
        calls.push({
          indexes,
          keys: [...keys],
          argv: [String(ttlMs), String(identityTtlMs), `[${items.join(",")}]`],
        });
      }
      let replies: unknown[][];
      if (isCluster) {
        replies = await Promise.all(
          calls.map((c) => client.sluiceFence(c.keys.length, ...c.keys, ...c.argv)),
        );
      } else {
        const pipeline = client.pipeline() as unknown as {
          sluiceFence(numKeys: number, ...args: string[]): void;
          exec(): Promise<Array<[Error | null, unknown]> | null>;
        };
        for (const c of calls) pipeline.sluiceFence(c.keys.length, ...c.keys, ...c.argv);
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([err]) => err);
        if (failed || results.length !== calls.length) {
          throw failed?.[0] ?? new Error("Redis pipeline returned no replies");
        }
        replies = results.map(([, r]) => r as unknown[]);
      }
      const rejected: RecordRejection[] = [];
      replies.forEach((reply, c) => {
        for (let j = 2; j + 1 < reply.length; j += 2) {
          const message = String(reply[j + 1]);
          const word = /^[A-Z]+/.exec(message)?.[0] ?? "ERR";
          rejected.push({
            index: calls[c]!.indexes[Number(reply[j])]!,
            error: new Error(message),
            code: `REDIS_${word}`,
          });
        }
      });
      return rejected;
    },
    classify: classifyRedis,
    ping: async () => {
      await redis.ping();
    },
    async release() {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };

  const sink = new BatchingSink<R, Payload>(driver, options, { name, maxBatchRows: 1000 });
  return Object.assign(sink, { fenceKey }) as BatchingSink<R, Payload> & RedisSink<R>;
}
