import { mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { type Duration, parseDuration } from "@sluice/schema";
import { ClassicLevel } from "classic-level";
import { LRUCache } from "lru-cache";
import { type ChangelogMutation, type ChangelogWriter, encodeChangelog } from "./changelog.js";
import { statsChannel } from "./internal/channels.js";
import { type DirtyWindow, PartitionChanges, TOMBSTONE } from "./internal/dirty.js";
import {
  GLOBAL_PARTITION,
  indexKey,
  kvCacheKey,
  kvKey,
  metaKey,
  parseIndexKey,
  parseWindowKey,
  partitionPrefix,
  prefixEnd,
  readTime,
  T_INDEX,
  T_KV,
  T_WINDOW,
  windowCacheKey,
  windowKey,
  windowKeyPrefix,
  windowValue,
  writeTime,
} from "./internal/keys.js";
import { StateError } from "./state-error.js";
import { jsonCodec, type ValueCodec, v8Codec } from "./value-codec.js";

/**
 * Lifecycle of a {@link StateStore}.
 *
 * @since 0.1.0
 */
export type StateStoreStatus = "opening" | "open" | "closing" | "closed";

/**
 * Options of {@link openStateStore}.
 *
 * @since 0.1.0
 */
export interface StateStoreOptions<V = unknown> {
  /** Parent directory of the store; created when missing. */
  dir: string;
  /** Store name: the LevelDB directory is `<dir>/<name>`; also the changelog topic's middle part. Letters, digits, `.`, `_`, `-`. */
  name: string;
  /**
   * Value codec: `"json"`, `"v8"` or a custom {@link ValueCodec}. The codec
   * name is recorded in the store; reopening with another one fails.
   * @defaultValue "json"
   */
  codec?: "json" | "v8" | ValueCodec<V>;
  /**
   * Upper bound, in bytes, of the read cache of checkpointed entries (LRU,
   * sized by encoded bytes + key). Uncheckpointed changes are held apart and
   * are bounded by how often you checkpoint.
   * @defaultValue 67108864 (64 MiB)
   */
  cacheMaxBytes?: number;
  /**
   * Window retention after window end (set it to at least grace + allowed
   * lateness). When set, every checkpoint that carries a `streamTime` also
   * deletes, in the same batch, up to `expiryBatchSize` windows whose end is
   * before `streamTime - retention`; the deletions reach the changelog as
   * tombstones. Unset: windows are kept until deleted.
   * @defaultValue undefined
   */
  retention?: Duration;
  /**
   * Maximum windows expired per checkpoint.
   * @defaultValue 10000
   */
  expiryBatchSize?: number;
  /**
   * What to do when the directory is corrupt or unreadable at open:
   * `"restore"` discards the local copy and opens an empty store, so each
   * partition is rebuilt from its changelog by {@link restore} (which sees no
   * local checkpoint and replays everything); `"error"` rejects with
   * `STATE_CORRUPT` and leaves the directory untouched.
   * @defaultValue "restore"
   */
  onCorruption?: "restore" | "error";
  /**
   * Hook called by every checkpoint with its encoded changes before they are
   * written locally; see {@link ChangelogWriter} and
   * {@link createKafkaChangelogWriter}.
   * @defaultValue undefined (the caller produces `checkpoint()`'s result itself)
   */
  changelog?: ChangelogWriter;
}

/**
 * Metadata written atomically with a partition's checkpoint.
 *
 * @since 0.1.0
 */
export interface CheckpointMetadata {
  /** Next source offset to consume once this state is in place, as given. */
  sourceOffset: string | number;
  /** Stream time (epoch ms) of the partition at the checkpoint. */
  streamTime: number;
  /**
   * Changelog offset from which a replay brings this state up to date (every
   * changelog record before it is already reflected here).
   */
  changelogOffset?: string | number;
  /** Wall-clock time (epoch ms) the checkpoint was written. */
  checkpointedAt: number;
}

/**
 * Arguments of {@link StateStore.checkpoint}.
 *
 * @since 0.1.0
 */
export interface CheckpointOptions {
  /** Source partition whose changes to write. */
  partition: number;
  /** Next source offset to consume after this checkpoint. */
  sourceOffset: string | number;
  /** The partition's stream time (epoch ms). */
  streamTime: number;
  /** Changelog offset to record; overridden by the writer hook's `nextOffset`. */
  changelogOffset?: string | number;
}

/**
 * One window's state as yielded by the window iterators.
 *
 * @since 0.1.0
 */
export interface WindowEntry<V = unknown> {
  /** The grouping key. */
  key: string;
  /** Window start, epoch ms (inclusive). */
  windowStart: number;
  /** Window end, epoch ms (exclusive). */
  windowEnd: number;
  /** The stored value. */
  value: V;
}

/**
 * Counters of a store; see {@link StateStore.stats}.
 *
 * @since 0.1.0
 */
export interface StateStoreStats {
  /** Store name. */
  store: string;
  /** Entries on disk (key-value plus windows), over all partitions. */
  keys: number;
  /** Bytes of the LevelDB directory on disk. */
  bytes: number;
  /** Reads served by the cache or by uncheckpointed changes. */
  cacheHits: number;
  /** Reads that went to disk. */
  cacheMisses: number;
  /** `cacheHits / (cacheHits + cacheMisses)`, 0 before any read. */
  cacheHitRatio: number;
  /** Bytes held by the read cache. */
  cacheBytes: number;
  /** Changed entries not yet checkpointed. */
  dirtyEntries: number;
  /** Milliseconds since the last checkpoint of this process, undefined before the first. */
  lastCheckpointAgeMs: number | undefined;
  /** Per-partition counts. */
  partitions: Array<{ partition: number; keys: number; bytes: number }>;
}

/**
 * How the store came to be opened; see {@link StateStore.openedFrom}.
 *
 * @since 0.1.0
 */
export type OpenedFrom = "new" | "existing" | "reset-after-corruption";

const ABSENT: Buffer = Buffer.alloc(0);
const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY: Buffer = Buffer.alloc(0);
const FORMAT = 1;
const CHECKPOINT_META = "checkpoint";
const MAX_PARTITION = 0x7fffffff;

interface Part {
  n: number;
  dirty: PartitionChanges;
  pending: PartitionChanges | undefined;
  chain: Promise<unknown>;
  handle: PartitionState<unknown> | undefined;
}

function resolveCodec<V>(codec: StateStoreOptions<V>["codec"]): ValueCodec<V> {
  if (codec === undefined || codec === "json") return jsonCodec as ValueCodec<V>;
  if (codec === "v8") return v8Codec as ValueCodec<V>;
  if (
    typeof codec === "object" &&
    codec !== null &&
    typeof codec.encode === "function" &&
    typeof codec.decode === "function" &&
    typeof codec.name === "string"
  ) {
    return codec;
  }
  throw new StateError(
    "STATE_INVALID_OPTIONS",
    `codec must be "json", "v8" or an object { name, encode, decode }; got ${String(codec)}`,
  );
}

function checkPartition(partition: unknown): number {
  if (
    typeof partition !== "number" ||
    !Number.isInteger(partition) ||
    partition < 0 ||
    partition > MAX_PARTITION
  ) {
    throw new StateError(
      "STATE_INVALID_ARGUMENT",
      `partition must be an integer from 0 to ${MAX_PARTITION}; got ${String(partition)}`,
    );
  }
  return partition;
}

function checkKey(key: unknown): string {
  if (typeof key !== "string") {
    throw new StateError("STATE_INVALID_ARGUMENT", `state keys are strings; got ${typeof key}`);
  }
  return key;
}

function checkTime(t: unknown, name: string): number {
  if (typeof t !== "number" || !Number.isSafeInteger(t)) {
    throw new StateError(
      "STATE_INVALID_ARGUMENT",
      `${name} must be a safe integer of epoch milliseconds; got ${String(t)}`,
    );
  }
  return t;
}

function checkOffset(o: unknown, name: string): string | number {
  if (
    (typeof o === "number" && Number.isSafeInteger(o) && o >= 0) ||
    (typeof o === "string" && /^\d+$/.test(o))
  ) {
    return o;
  }
  throw new StateError(
    "STATE_INVALID_ARGUMENT",
    `${name} must be a non-negative integer or a string of digits (a Kafka offset); got ${String(o)}`,
  );
}

function levelCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = typeof e?.code === "string" ? e.code : undefined;
  if (code === "LEVEL_DATABASE_NOT_OPEN" && typeof e?.cause?.code === "string") return e.cause.code;
  return code;
}

function compareWindows(a: WindowEntry, b: WindowEntry): number {
  return (
    a.windowEnd - b.windowEnd ||
    a.windowStart - b.windowStart ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}

/** @internal Applies changelog records to a partition; used by `restore`. */
export const kApplyChangelog: unique symbol = Symbol("sluice.state.applyChangelog");
/** @internal Drops a partition's uncheckpointed changes (before a restore). */
export const kDiscardChanges: unique symbol = Symbol("sluice.state.discardChanges");
/** @internal Writes a partition's checkpoint metadata after a restore. */
export const kWriteRestoredCheckpoint: unique symbol = Symbol("sluice.state.writeRestored");

/**
 * Key-value and window state of one source partition of a {@link StateStore}.
 * Changes are held in memory until {@link StateStore.checkpoint} writes them;
 * reads see them immediately. Values returned by reads are decoded copies of
 * checkpointed bytes, or the very object passed to the last put when it is
 * not checkpointed yet: do not mutate a value without putting it back.
 *
 * @example
 * ```ts
 * const p = store.partition(0);
 * await p.put("user-1", { clicks: 1 });
 * await p.putWindow("user-1", 0, 60_000, { clicks: 1 });
 * for await (const w of p.windowsEndingBefore(streamTime - graceMs)) emit(w);
 * ```
 * @since 0.1.0
 */
export class PartitionState<V = unknown> {
  // The partition's current map of uncheckpointed key-value changes while the
  // store is open, null from the moment it starts closing. Held here so that
  // an update is one load and one Map.set: the store rebinds it whenever it
  // swaps the partition's changes (checkpoint, wipe, restore) and on close.
  private kv: Map<string, unknown> | null;

  /** @internal */
  constructor(
    private readonly store: StateStore<V>,
    /** The source partition. */
    readonly partition: number,
    part: Part,
  ) {
    this.kv = part.dirty.kv;
  }

  /** @internal Points the update fast path at `kv` (null: the store is not open). */
  _bind(kv: Map<string, unknown> | null): void {
    this.kv = kv;
  }

  /**
   * Reads a key-value entry.
   *
   * @param key - the key
   * @returns the value, or `undefined` when absent
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`, `STATE_CODEC_FAILED`
   * @example
   * ```ts
   * const total = (await p.get("user-1")) ?? 0;
   * ```
   */
  get(key: string): Promise<V | undefined> {
    return this.store._get(this.partition, key);
  }

  /**
   * Sets a key-value entry (held until the next checkpoint).
   *
   * @param key - the key
   * @param value - the value (not `undefined`)
   * @returns once recorded
   * @throws StateError `STATE_CLOSED`, `STATE_INVALID_ARGUMENT`
   * @example
   * ```ts
   * await p.put("user-1", 42);
   * ```
   */
  put(key: string, value: V): Promise<void> {
    // hot path: one Map.set, no allocation
    const kv = this.kv;
    if (kv !== null && typeof key === "string" && value !== undefined) {
      kv.set(key, value);
      return RESOLVED;
    }
    try {
      this.store._put(this.partition, key, value);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Synchronous {@link PartitionState.put}: records the change in memory and
   * returns at once, without a Promise (for hot loops of updates, where
   * awaiting each `put` costs more than the update itself). The change is
   * held and written by the next checkpoint exactly like one made with `put`;
   * a change made while a checkpoint is running belongs to the next one.
   *
   * @param key - the key
   * @param value - the value (not `undefined`)
   * @returns nothing
   * @throws StateError `STATE_CLOSED`, `STATE_INVALID_ARGUMENT` (thrown, not rejected)
   * @example
   * ```ts
   * for (const e of events) p.putSync(e.user_id, e.total);
   * await store.checkpoint({ partition: 0, sourceOffset, streamTime });
   * ```
   * @since 0.1.0
   */
  putSync(key: string, value: V): void {
    const kv = this.kv;
    if (kv !== null && typeof key === "string" && value !== undefined) {
      kv.set(key, value);
      return;
    }
    this.store._put(this.partition, key, value);
  }

  /**
   * Synchronous {@link PartitionState.delete}: records the deletion (a
   * tombstone in the changelog) and returns at once.
   *
   * @param key - the key
   * @returns nothing
   * @throws StateError `STATE_CLOSED`, `STATE_INVALID_ARGUMENT` (thrown, not rejected)
   * @example
   * ```ts
   * p.deleteSync("user-1");
   * ```
   * @since 0.1.0
   */
  deleteSync(key: string): void {
    const kv = this.kv;
    if (kv !== null && typeof key === "string") {
      kv.set(key, TOMBSTONE);
      return;
    }
    this.store._put(this.partition, key, TOMBSTONE);
  }

  /**
   * Deletes a key-value entry (a tombstone in the changelog).
   *
   * @param key - the key
   * @returns once recorded
   * @throws StateError `STATE_CLOSED`, `STATE_INVALID_ARGUMENT`
   * @example
   * ```ts
   * await p.delete("user-1");
   * ```
   */
  delete(key: string): Promise<void> {
    const kv = this.kv;
    if (kv !== null && typeof key === "string") {
      kv.set(key, TOMBSTONE);
      return RESOLVED;
    }
    try {
      this.store._put(this.partition, key, TOMBSTONE);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Reads the state of one window.
   *
   * @param key - the grouping key
   * @param windowStart - window start (epoch ms)
   * @returns the window (with its end), or `undefined`
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`, `STATE_CODEC_FAILED`
   * @example
   * ```ts
   * const w = await p.getWindow("user-1", 0);
   * ```
   */
  getWindow(key: string, windowStart: number): Promise<WindowEntry<V> | undefined> {
    return this.store._getWindow(this.partition, key, windowStart);
  }

  /**
   * Sets the state of one window. Its end goes into the time index used by
   * {@link PartitionState.windowsEndingBefore}; a window may change its end
   * (session merging) and the index follows.
   *
   * @param key - the grouping key
   * @param windowStart - window start (epoch ms)
   * @param windowEnd - window end (epoch ms)
   * @param value - the aggregate
   * @returns once recorded
   * @throws StateError `STATE_CLOSED`, `STATE_INVALID_ARGUMENT`
   * @example
   * ```ts
   * await p.putWindow("user-1", 0, 60_000, { clicks: 3 });
   * ```
   */
  putWindow(key: string, windowStart: number, windowEnd: number, value: V): Promise<void> {
    try {
      this.store._putWindow(this.partition, key, windowStart, windowEnd, value);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Deletes one window (and its index entry).
   *
   * @param key - the grouping key
   * @param windowStart - window start (epoch ms)
   * @returns once recorded
   * @throws StateError `STATE_CLOSED`, `STATE_INVALID_ARGUMENT`
   * @example
   * ```ts
   * await p.deleteWindow("user-1", 0);
   * ```
   */
  deleteWindow(key: string, windowStart: number): Promise<void> {
    try {
      this.store._putWindow(this.partition, key, windowStart, 0, TOMBSTONE);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Windows whose end is strictly before `time`, ascending by end (then
   * start, then key), found through the time index without scanning keys.
   * Includes uncheckpointed changes. Deleting yielded windows while
   * iterating is allowed.
   *
   * @param time - exclusive bound on window end (epoch ms)
   * @returns an async iterable of windows
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`, `STATE_CODEC_FAILED`
   * @example
   * ```ts
   * for await (const w of p.windowsEndingBefore(streamTime - graceMs)) {
   *   await sink.write([w]);
   *   await p.deleteWindow(w.key, w.windowStart);
   * }
   * ```
   */
  windowsEndingBefore(time: number): AsyncIterable<WindowEntry<V>> {
    return this.store._windowsEndingBefore(this.partition, time);
  }

  /**
   * Every window of one key, ascending by start (for session merging).
   *
   * @param key - the grouping key
   * @returns an async iterable of windows
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`, `STATE_CODEC_FAILED`
   * @example
   * ```ts
   * for await (const s of p.windowsForKey("user-1")) console.log(s.windowStart, s.windowEnd);
   * ```
   */
  windowsForKey(key: string): AsyncIterable<WindowEntry<V>> {
    return this.store._windowsForKey(this.partition, key);
  }

  /**
   * Every key-value entry of the partition, checkpointed ones in key byte
   * order followed by uncheckpointed ones.
   *
   * @returns an async iterable of `[key, value]`
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`, `STATE_CODEC_FAILED`
   * @example
   * ```ts
   * for await (const [key, value] of p.entries()) console.log(key, value);
   * ```
   */
  entries(): AsyncIterable<[string, V]> {
    return this.store._entries(this.partition);
  }

  /**
   * Deletes up to `limit` windows whose end is before `time` (as tombstones,
   * written by the next checkpoint). Checkpoints do this by themselves when
   * the store has a `retention`.
   *
   * @param time - exclusive bound on window end (epoch ms)
   * @param limit - maximum windows to delete
   * @returns how many windows were deleted
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`
   * @defaultValue limit: 10000
   * @example
   * ```ts
   * const n = await p.expireWindows(streamTime - 86_400_000);
   * ```
   */
  async expireWindows(time: number, limit = 10_000): Promise<number> {
    return this.store._expire(this.partition, time, limit);
  }
}

/**
 * A durable keyed state store on LevelDB (`classic-level`), scoped by source
 * partition, with a byte-bounded LRU read cache, write-back of changes at
 * checkpoints (one atomic LevelDB batch per checkpoint, with its source
 * offset), and changelog mutations for Kafka. Create it with
 * {@link openStateStore}.
 *
 * @since 0.1.0
 */
export class StateStore<V = unknown> {
  /** Store name. */
  readonly name: string;
  /** LevelDB directory (`<dir>/<name>`). */
  readonly location: string;
  /** Value codec in use. */
  readonly codec: ValueCodec<V>;
  private _status: StateStoreStatus = "opening";
  private _openedFrom: OpenedFrom = "new";
  private db!: ClassicLevel<Buffer, Buffer>;
  private readonly parts = new Map<number, Part>();
  private readonly cache: LRUCache<string, Buffer>;
  private readonly iterators = new Set<{ close(): Promise<void> }>();
  private readonly retentionMs: number | undefined;
  private readonly expiryBatchSize: number;
  private readonly onCorruption: "restore" | "error";
  private readonly writer: ChangelogWriter | undefined;
  private epoch = 0;
  private hits = 0;
  private misses = 0;
  private lastCheckpointAt: number | undefined;
  private closing: Promise<void> | undefined;

  /** @internal Use {@link openStateStore}. */
  constructor(opts: StateStoreOptions<V>) {
    if (typeof opts !== "object" || opts === null) {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        "openStateStore needs an options object { dir, name }",
      );
    }
    if (typeof opts.dir !== "string" || opts.dir.length === 0) {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        `dir must be a non-empty path; got ${String(opts.dir)}`,
      );
    }
    if (
      typeof opts.name !== "string" ||
      !/^[A-Za-z0-9._-]+$/.test(opts.name) ||
      opts.name === "." ||
      opts.name === ".."
    ) {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        `name must be letters, digits, '.', '_' or '-'; got ${JSON.stringify(opts.name)}`,
      );
    }
    const cacheMaxBytes = opts.cacheMaxBytes ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(cacheMaxBytes) || cacheMaxBytes < 1) {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        `cacheMaxBytes must be a positive integer; got ${String(opts.cacheMaxBytes)}`,
      );
    }
    this.expiryBatchSize = opts.expiryBatchSize ?? 10_000;
    if (!Number.isSafeInteger(this.expiryBatchSize) || this.expiryBatchSize < 1) {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        `expiryBatchSize must be a positive integer; got ${String(opts.expiryBatchSize)}`,
      );
    }
    if (
      opts.onCorruption !== undefined &&
      opts.onCorruption !== "restore" &&
      opts.onCorruption !== "error"
    ) {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        `onCorruption must be "restore" or "error"; got ${String(opts.onCorruption)}`,
      );
    }
    if (opts.changelog !== undefined && typeof opts.changelog?.write !== "function") {
      throw new StateError(
        "STATE_INVALID_OPTIONS",
        "changelog must be an object with a write(partition, messages) method",
      );
    }
    try {
      this.retentionMs =
        opts.retention === undefined ? undefined : parseDuration(opts.retention, "retention");
    } catch (err) {
      throw new StateError("STATE_INVALID_OPTIONS", (err as Error).message, { cause: err });
    }
    this.name = opts.name;
    this.location = path.join(opts.dir, opts.name);
    this.codec = resolveCodec(opts.codec);
    this.onCorruption = opts.onCorruption ?? "restore";
    this.writer = opts.changelog;
    this.cache = new LRUCache<string, Buffer>({
      maxSize: cacheMaxBytes,
      sizeCalculation: (value, key) => value.length + key.length * 2 + 64,
    });
  }

  /** `'opening' | 'open' | 'closing' | 'closed'`. */
  get status(): StateStoreStatus {
    return this._status;
  }

  /**
   * Whether the directory was created, reopened, or discarded because it was
   * corrupt (then every partition must be restored from its changelog).
   */
  get openedFrom(): OpenedFrom {
    return this._openedFrom;
  }

  /** @internal */
  async _open(): Promise<void> {
    const dir = path.dirname(this.location);
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new StateError(
        "STATE_OPEN_FAILED",
        `cannot create state directory ${dir}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    let existed = true;
    try {
      await stat(this.location);
    } catch {
      existed = false;
    }
    this._openedFrom = existed ? "existing" : "new";
    try {
      await this.openDb();
    } catch (err) {
      if (
        StateError.isInstance(err) &&
        err.code === "STATE_CORRUPT" &&
        this.onCorruption === "restore"
      ) {
        await rm(this.location, { recursive: true, force: true });
        await this.openDb();
        this._openedFrom = "reset-after-corruption";
      } else {
        throw err;
      }
    }
    this._status = "open";
  }

  private async openDb(): Promise<void> {
    const db = new ClassicLevel<Buffer, Buffer>(this.location, {
      keyEncoding: "buffer",
      valueEncoding: "buffer",
    });
    try {
      await db.open({ createIfMissing: true });
    } catch (err) {
      const code = levelCode(err);
      if (code === "LEVEL_LOCKED") {
        throw new StateError(
          "STATE_LOCKED",
          `state store ${this.location} is locked by another process or store instance; close it first`,
          { cause: err },
        );
      }
      if (code === "LEVEL_CORRUPTION" || code === "LEVEL_IO_ERROR") {
        throw new StateError(
          "STATE_CORRUPT",
          `state store ${this.location} is corrupt or unreadable (${(err as Error).cause ? String((err as Error).cause) : (err as Error).message}); restore it from its changelog`,
          { cause: err },
        );
      }
      throw new StateError(
        "STATE_OPEN_FAILED",
        `cannot open state store ${this.location}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    // The format marker tells a Sluice store from a foreign or damaged one.
    try {
      const marker = await db.get(metaKey(GLOBAL_PARTITION, "format"));
      if (marker === undefined) {
        const it = db.keys({ limit: 1 });
        const any = await it.next();
        await it.close();
        if (any !== undefined) throw new Error("format marker missing in a non-empty directory");
        await db.put(
          metaKey(GLOBAL_PARTITION, "format"),
          Buffer.from(JSON.stringify({ format: FORMAT, codec: this.codec.name })),
        );
      } else {
        const m = JSON.parse(marker.toString("utf8")) as { format?: unknown; codec?: unknown };
        if (m.format !== FORMAT) throw new Error(`unknown format ${String(m.format)}`);
        if (m.codec !== this.codec.name) {
          await db.close();
          throw new StateError(
            "STATE_INVALID_OPTIONS",
            `state store ${this.location} was written with codec "${String(m.codec)}", opened with "${this.codec.name}"; open it with the same codec`,
          );
        }
      }
    } catch (err) {
      if (StateError.isInstance(err)) throw err;
      await db.close().catch(() => {});
      throw new StateError(
        "STATE_CORRUPT",
        `state store ${this.location} is corrupt or not a Sluice state store (${(err as Error).message}); restore it from its changelog`,
        { cause: err },
      );
    }
    this.db = db;
  }

  /**
   * The state of one source partition. Cheap; the same object is returned for
   * the same partition.
   *
   * @param partition - source partition number
   * @returns the partition's state
   * @throws StateError `STATE_INVALID_ARGUMENT` for a bad partition number, `STATE_CLOSED`
   * @example
   * ```ts
   * const p = store.partition(3);
   * ```
   */
  partition(partition: number): PartitionState<V> {
    this.assertOpen();
    const part = this.part(checkPartition(partition));
    part.handle ??= new PartitionState<V>(this, partition, part) as PartitionState<unknown>;
    return part.handle as PartitionState<V>;
  }

  /**
   * Writes every uncheckpointed change of one partition, plus its metadata
   * (source offset, stream time, changelog offset), in ONE LevelDB batch:
   * after any crash the partition holds exactly the state of a completed
   * checkpoint. With a `retention`, expired windows are deleted in the same
   * batch. With a `changelog` writer, the changes are handed to it first.
   * Checkpoints of one partition run one after another.
   *
   * @param opts - partition, sourceOffset, streamTime, optional changelogOffset
   * @returns the checkpoint's changelog mutations (including one metadata record); produce them with {@link encodeChangelog}
   * @throws StateError `STATE_CHECKPOINT_FAILED` when the batch cannot be written (the previous checkpoint stays intact and the changes stay pending; retry), `STATE_CHANGELOG_FAILED`, `STATE_CODEC_FAILED`, `STATE_INVALID_ARGUMENT`, `STATE_CLOSED`
   * @example
   * ```ts
   * const mutations = await store.checkpoint({ partition: 0, sourceOffset: "1042", streamTime });
   * ```
   */
  checkpoint(opts: CheckpointOptions): Promise<ChangelogMutation[]> {
    try {
      this.assertOpen();
      if (typeof opts !== "object" || opts === null) {
        throw new StateError(
          "STATE_INVALID_ARGUMENT",
          "checkpoint needs { partition, sourceOffset, streamTime }",
        );
      }
      checkPartition(opts.partition);
      checkOffset(opts.sourceOffset, "sourceOffset");
      checkTime(opts.streamTime, "streamTime");
      if (opts.changelogOffset !== undefined) checkOffset(opts.changelogOffset, "changelogOffset");
    } catch (err) {
      return Promise.reject(err);
    }
    const part = this.part(opts.partition);
    const run = part.chain.then(() => this.doCheckpoint(part, opts));
    part.chain = run.catch(() => {});
    return run;
  }

  private async doCheckpoint(part: Part, opts: CheckpointOptions): Promise<ChangelogMutation[]> {
    this.assertOpen();
    const p = part.n;
    if (this.retentionMs !== undefined) {
      await this._expire(p, opts.streamTime - this.retentionMs, this.expiryBatchSize);
    }
    const changes = part.dirty;
    this.setDirty(part, new PartitionChanges());
    part.pending = changes;
    // A chained batch: operations go straight to the native batch (no array
    // of operations cloned by abstract-level), and write() applies them
    // atomically.
    const batch = this.db.batch();
    let written = false;
    try {
      const mutations: ChangelogMutation[] = [];
      // Stored bytes per changed entry, in iteration order, for the cache.
      const stored: Buffer[] = [];
      for (const [key, value] of changes.kv) {
        const k = kvKey(p, key);
        if (value === TOMBSTONE) {
          batch.del(k);
          mutations.push({ key: k, value: null });
          stored.push(ABSENT);
        } else {
          const bytes = this.encode(value as V, key);
          const buf = Buffer.isBuffer(bytes)
            ? bytes
            : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
          batch.put(k, buf);
          mutations.push({ key: k, value: buf });
          stored.push(buf);
        }
      }
      if (changes.windowCount > 0) {
        await this.resolveBaseEnds(p, changes);
        for (const [key, byStart] of changes.windows) {
          for (const w of byStart.values()) {
            const k = windowKey(p, key, w.start);
            if (w.staleEnds) {
              for (const end of w.staleEnds) {
                if (w.value === TOMBSTONE || end !== w.end)
                  batch.del(indexKey(p, end, w.start, key));
              }
            }
            if (w.value === TOMBSTONE) {
              batch.del(k);
              mutations.push({ key: k, value: null });
              stored.push(ABSENT);
            } else {
              const raw = windowValue(w.end, this.encode(w.value as V, key));
              batch.put(k, raw);
              batch.put(indexKey(p, w.end, w.start, key), EMPTY);
              mutations.push({ key: k, value: raw });
              stored.push(raw);
            }
          }
        }
      }
      const metaForChangelog = Buffer.from(
        JSON.stringify({ sourceOffset: opts.sourceOffset, streamTime: opts.streamTime }),
      );
      const mk = metaKey(p, CHECKPOINT_META);
      mutations.push({ key: mk, value: metaForChangelog });
      let changelogOffset = opts.changelogOffset;
      if (this.writer) {
        try {
          const r = await this.writer.write(p, encodeChangelog(mutations, p));
          if (r && r.nextOffset !== undefined) changelogOffset = r.nextOffset;
        } catch (err) {
          throw new StateError(
            "STATE_CHANGELOG_FAILED",
            `changelog writer failed for partition ${p} of store ${this.name}: ${(err as Error).message}; nothing was written, retry the checkpoint`,
            { cause: err },
          );
        }
      }
      const meta: CheckpointMetadata = {
        sourceOffset: opts.sourceOffset,
        streamTime: opts.streamTime,
        checkpointedAt: Date.now(),
      };
      if (changelogOffset !== undefined) meta.changelogOffset = changelogOffset;
      batch.put(mk, Buffer.from(JSON.stringify(meta)));
      try {
        written = true;
        await batch.write();
      } catch (err) {
        throw new StateError(
          "STATE_CHECKPOINT_FAILED",
          `checkpoint of partition ${p} of store ${this.name} failed (${(err as Error).message}); the previous checkpoint is intact and the changes are kept, retry once the disk is healthy`,
          { cause: err },
        );
      }
      this.epoch++;
      this.cacheCheckpointed(p, changes, stored);
      part.pending = undefined;
      this.lastCheckpointAt = Date.now();
      return mutations;
    } catch (err) {
      if (!written) await batch.close().catch(() => {});
      part.dirty.mergeOlder(changes);
      part.pending = undefined;
      if (StateError.isInstance(err)) throw err;
      throw new StateError(
        "STATE_CHECKPOINT_FAILED",
        `checkpoint of partition ${p} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /**
   * Moves a checkpoint's entries into the read cache as clean entries. When
   * they exceed the cache, only the most recently changed ones that fit are
   * cached (the others would be evicted at once); the rest lose any stale
   * cached version.
   */
  private cacheCheckpointed(p: number, changes: PartitionChanges, stored: Buffer[]): void {
    const max = this.cache.maxSize;
    let budget = max;
    let first = stored.length;
    while (first > 0) {
      const size = stored[first - 1]!.length + 96;
      if (size > budget) break;
      budget -= size;
      first--;
    }
    let i = 0;
    for (const key of changes.kv.keys()) {
      const ck = kvCacheKey(p, key);
      if (i >= first) this.cache.set(ck, stored[i]!);
      else this.cache.delete(ck);
      i++;
    }
    for (const [key, byStart] of changes.windows) {
      for (const start of byStart.keys()) {
        const ck = windowCacheKey(p, key, start);
        if (i >= first) this.cache.set(ck, stored[i]!);
        else this.cache.delete(ck);
        i++;
      }
    }
  }

  /** Finds the on-disk end of windows whose previous end is unknown. */
  private async resolveBaseEnds(p: number, changes: PartitionChanges): Promise<void> {
    const unknown: Array<[string, DirtyWindow]> = [];
    for (const [key, byStart] of changes.windows) {
      for (const w of byStart.values()) if (w.baseUnknown) unknown.push([key, w]);
    }
    if (unknown.length === 0) return;
    const raws = await this.io(() =>
      this.db.getMany(unknown.map(([key, w]) => windowKey(p, key, w.start))),
    );
    for (let i = 0; i < unknown.length; i++) {
      const [, w] = unknown[i]!;
      const raw = raws[i];
      if (raw !== undefined) w.staleEnds = [...(w.staleEnds ?? []), readTime(raw, 0)];
      w.baseUnknown = false;
    }
  }

  /**
   * The metadata of a partition's last completed checkpoint (or restore).
   *
   * @param partition - source partition
   * @returns the metadata, or `undefined` when the partition was never checkpointed here
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`, `STATE_CORRUPT`
   * @example
   * ```ts
   * const cp = await store.readCheckpoint(0);
   * consumer.seek({ topic, partition: 0, offset: String(cp?.sourceOffset ?? 0) });
   * ```
   */
  async readCheckpoint(partition: number): Promise<CheckpointMetadata | undefined> {
    this.assertOpen();
    const raw = await this.io(() =>
      this.db.get(metaKey(checkPartition(partition), CHECKPOINT_META)),
    );
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw.toString("utf8")) as CheckpointMetadata;
    } catch (err) {
      throw new StateError(
        "STATE_CORRUPT",
        `checkpoint metadata of partition ${partition} in ${this.location} is unreadable; wipe and restore the partition`,
        { cause: err },
      );
    }
  }

  /**
   * Deletes all state of one partition, on disk and in memory (for example
   * before handing it over, or before a full restore).
   *
   * @param partition - source partition
   * @returns once deleted
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`
   * @example
   * ```ts
   * await store.wipe(3);
   * ```
   */
  async wipe(partition: number): Promise<void> {
    this.assertOpen();
    const part = this.part(checkPartition(partition));
    const run = part.chain.then(async () => {
      const prefix = partitionPrefix(partition);
      await this.io(() => this.db.clear({ gte: prefix, lt: prefixEnd(prefix) }));
      this.setDirty(part, new PartitionChanges());
      part.pending = undefined;
      this.dropCachedPartition(partition);
    });
    part.chain = run.catch(() => {});
    return run;
  }

  private dropCachedPartition(partition: number): void {
    this.epoch++;
    const a = `${partition}\u0001`;
    const b = `${partition}\u0002`;
    for (const k of [...this.cache.keys()]) {
      if (k.startsWith(a) || k.startsWith(b)) this.cache.delete(k);
    }
  }

  /**
   * Partitions that have state on disk, ascending.
   *
   * @returns partition numbers
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`
   * @example
   * ```ts
   * for (const n of await store.partitions()) if (!assigned.has(n)) await store.wipe(n);
   * ```
   */
  async partitions(): Promise<number[]> {
    this.assertOpen();
    const out: number[] = [];
    const it = this.db.keys({ lt: partitionPrefix(GLOBAL_PARTITION) });
    this.iterators.add(it);
    try {
      let k = await this.io(() => it.next());
      while (k !== undefined) {
        const n = k.readUInt32BE(0);
        out.push(n);
        it.seek(partitionPrefix(n + 1));
        k = await this.io(() => it.next());
      }
    } finally {
      this.iterators.delete(it);
      await it.close();
    }
    return out;
  }

  /**
   * Counts entries and bytes on disk (O(keys): it iterates keys), returns the
   * cache counters and publishes them on `sluice:state:stats` (one message
   * per partition and one for the whole store) when someone subscribes.
   *
   * @returns the store's statistics
   * @throws StateError `STATE_CLOSED`, `STATE_IO_FAILED`
   * @example
   * ```ts
   * const { keys, cacheHitRatio, lastCheckpointAgeMs } = await store.stats();
   * ```
   */
  async stats(): Promise<StateStoreStats> {
    this.assertOpen();
    const partitions: StateStoreStats["partitions"] = [];
    for (const n of await this.partitions()) {
      let keys = 0;
      for (const type of [T_KV, T_WINDOW]) {
        const prefix = partitionPrefix(n, type);
        for await (const batch of this.scanKeys(prefix, prefixEnd(prefix), 10_000))
          keys += batch.length;
      }
      const prefix = partitionPrefix(n);
      const bytes = await this.io(() => this.db.approximateSize(prefix, prefixEnd(prefix)));
      partitions.push({ partition: n, keys, bytes });
    }
    let bytes = 0;
    try {
      for (const f of await readdir(this.location))
        bytes += (await stat(path.join(this.location, f))).size;
    } catch {
      // a file vanished during compaction: the sum is approximate anyway
    }
    let dirtyEntries = 0;
    for (const part of this.parts.values())
      dirtyEntries += part.dirty.size + (part.pending?.size ?? 0);
    const lookups = this.hits + this.misses;
    const stats: StateStoreStats = {
      store: this.name,
      keys: partitions.reduce((a, p) => a + p.keys, 0),
      bytes,
      cacheHits: this.hits,
      cacheMisses: this.misses,
      cacheHitRatio: lookups === 0 ? 0 : this.hits / lookups,
      cacheBytes: this.cache.calculatedSize,
      dirtyEntries,
      lastCheckpointAgeMs:
        this.lastCheckpointAt === undefined ? undefined : Date.now() - this.lastCheckpointAt,
      partitions,
    };
    if (statsChannel.hasSubscribers) {
      for (const p of partitions) {
        statsChannel.publish({
          store: this.name,
          partition: p.partition,
          keys: p.keys,
          bytes: p.bytes,
          cacheHits: this.hits,
          cacheMisses: this.misses,
        });
      }
      statsChannel.publish({
        store: this.name,
        keys: stats.keys,
        bytes: stats.bytes,
        cacheHits: this.hits,
        cacheMisses: this.misses,
      });
    }
    return stats;
  }

  /**
   * Closes the store: waits for running checkpoints, closes open iterators
   * and LevelDB. Changes not checkpointed are DISCARDED (the source offsets
   * of a checkpoint describe exactly what is on disk; checkpoint first to keep
   * them). Idempotent; later calls reject with `STATE_CLOSED`.
   *
   * @returns once closed
   * @example
   * ```ts
   * await store.checkpoint({ partition: 0, sourceOffset, streamTime });
   * await store.close();
   * ```
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this._status = "closing";
    for (const part of this.parts.values()) part.handle?._bind(null);
    this.closing = (async () => {
      await Promise.all([...this.parts.values()].map((p) => p.chain));
      await Promise.all([...this.iterators].map((it) => it.close().catch(() => {})));
      this.iterators.clear();
      try {
        if (this.db) await this.db.close();
      } finally {
        this.parts.clear();
        this.cache.clear();
        this._status = "closed";
      }
    })();
    return this.closing;
  }

  /** Same as {@link StateStore.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals used by PartitionState and restore ----

  private assertOpen(): void {
    if (this._status !== "open") {
      throw new StateError(
        "STATE_CLOSED",
        `state store ${this.name} is ${this._status}; open a new one`,
      );
    }
  }

  /** Replaces a partition's uncheckpointed changes; its handle's fast path follows. */
  private setDirty(part: Part, changes: PartitionChanges): void {
    part.dirty = changes;
    part.handle?._bind(this._status === "open" ? changes.kv : null);
  }

  private part(n: number): Part {
    let part = this.parts.get(n);
    if (part === undefined) {
      part = {
        n,
        dirty: new PartitionChanges(),
        pending: undefined,
        chain: Promise.resolve(),
        handle: undefined,
      };
      this.parts.set(n, part);
    }
    return part;
  }

  private async io<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (StateError.isInstance(err)) throw err;
      const code = levelCode(err);
      if (code === "LEVEL_CORRUPTION" || /corruption/i.test(String((err as Error)?.message))) {
        throw new StateError(
          "STATE_CORRUPT",
          `state store ${this.location} is corrupt (${(err as Error).message}); wipe the partition and restore it from its changelog`,
          { cause: err },
        );
      }
      if (this._status !== "open") {
        throw new StateError(
          "STATE_CLOSED",
          `state store ${this.name} was closed during the operation`,
          {
            cause: err,
          },
        );
      }
      throw new StateError(
        "STATE_IO_FAILED",
        `read from state store ${this.location} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  private encode(value: V, key: string): Uint8Array {
    try {
      return this.codec.encode(value);
    } catch (err) {
      throw new StateError(
        "STATE_CODEC_FAILED",
        `codec "${this.codec.name}" cannot encode the value of key ${JSON.stringify(key)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private decode(bytes: Buffer, key: string): V {
    try {
      return this.codec.decode(bytes);
    } catch (err) {
      throw new StateError(
        "STATE_CODEC_FAILED",
        `codec "${this.codec.name}" cannot decode the value of key ${JSON.stringify(key)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** @internal */
  async _get(p: number, key: string): Promise<V | undefined> {
    this.assertOpen();
    checkKey(key);
    const part = this.part(p);
    let v = part.dirty.kv.get(key);
    if (v === undefined && part.pending) v = part.pending.kv.get(key);
    if (v !== undefined) {
      this.hits++;
      return v === TOMBSTONE ? undefined : (v as V);
    }
    const ck = kvCacheKey(p, key);
    const cached = this.cache.get(ck);
    if (cached !== undefined) {
      this.hits++;
      return cached === ABSENT ? undefined : this.decode(cached, key);
    }
    this.misses++;
    const epoch = this.epoch;
    const raw = await this.io(() => this.db.get(kvKey(p, key)));
    if (epoch === this.epoch && this._status === "open") this.cache.set(ck, raw ?? ABSENT);
    return raw === undefined ? undefined : this.decode(raw, key);
  }

  /** @internal */
  _put(p: number, key: string, value: unknown): void {
    this.assertOpen();
    if (typeof key !== "string") checkKey(key);
    if (value === undefined) {
      throw new StateError(
        "STATE_INVALID_ARGUMENT",
        `value of key ${JSON.stringify(key)} is undefined; use delete()`,
      );
    }
    this.part(p).dirty.kv.set(key, value);
  }

  /** @internal */
  async _getWindow(p: number, key: string, start: number): Promise<WindowEntry<V> | undefined> {
    this.assertOpen();
    checkKey(key);
    checkTime(start, "windowStart");
    const part = this.part(p);
    const w = part.dirty.getWindow(key, start) ?? part.pending?.getWindow(key, start);
    if (w !== undefined) {
      this.hits++;
      return w.value === TOMBSTONE
        ? undefined
        : { key, windowStart: start, windowEnd: w.end, value: w.value as V };
    }
    const raw = await this.readWindowRaw(p, key, start);
    return raw === undefined ? undefined : this.windowEntry(key, start, raw);
  }

  private windowEntry(key: string, start: number, raw: Buffer): WindowEntry<V> {
    return {
      key,
      windowStart: start,
      windowEnd: readTime(raw, 0),
      value: this.decode(raw.subarray(8), key),
    };
  }

  private async readWindowRaw(p: number, key: string, start: number): Promise<Buffer | undefined> {
    const ck = windowCacheKey(p, key, start);
    const cached = this.cache.get(ck);
    if (cached !== undefined) {
      this.hits++;
      return cached === ABSENT ? undefined : cached;
    }
    this.misses++;
    const epoch = this.epoch;
    const raw = await this.io(() => this.db.get(windowKey(p, key, start)));
    if (epoch === this.epoch && this._status === "open") this.cache.set(ck, raw ?? ABSENT);
    return raw;
  }

  /** @internal */
  _putWindow(p: number, key: string, start: number, end: number, value: unknown): void {
    this.assertOpen();
    checkKey(key);
    checkTime(start, "windowStart");
    if (value !== TOMBSTONE) {
      checkTime(end, "windowEnd");
      if (value === undefined) {
        throw new StateError(
          "STATE_INVALID_ARGUMENT",
          `value of window ${JSON.stringify(key)}@${start} is undefined; use deleteWindow()`,
        );
      }
    }
    const part = this.part(p);
    const prev = part.dirty.getWindow(key, start);
    let staleEnds: number[] | undefined;
    let baseUnknown = false;
    if (prev !== undefined) {
      staleEnds = prev.staleEnds;
      baseUnknown = prev.baseUnknown;
      if (prev.value !== TOMBSTONE && (value === TOMBSTONE || prev.end !== end)) {
        // prev's end may already be on disk if prev came back from a failed checkpoint
        staleEnds = staleEnds ? [...staleEnds, prev.end] : [prev.end];
      }
    } else {
      const pend = part.pending?.getWindow(key, start);
      if (pend !== undefined) {
        if (pend.value !== TOMBSTONE) staleEnds = [pend.end];
      } else {
        const cached = this.cache.get(windowCacheKey(p, key, start));
        if (cached === undefined) baseUnknown = true;
        else if (cached !== ABSENT) staleEnds = [readTime(cached, 0)];
      }
    }
    part.dirty.setWindow(key, {
      start,
      end: value === TOMBSTONE ? 0 : end,
      value,
      staleEnds,
      baseUnknown,
    });
  }

  /** Batches of keys in [gte, lt); the iterator is closed on close() or early exit. */
  private async *scanKeys(gte: Buffer, lt: Buffer, size = 1000): AsyncGenerator<Buffer[]> {
    const it = this.db.keys({ gte, lt, keyEncoding: "buffer" });
    this.iterators.add(it);
    try {
      for (;;) {
        const keys = await this.io(() => it.nextv(size));
        if (keys.length === 0) return;
        yield keys;
      }
    } finally {
      this.iterators.delete(it);
      await it.close();
    }
  }

  /** Batches of entries in [gte, lt); the iterator is closed on close() or early exit. */
  private async *scanEntries(gte: Buffer, lt: Buffer): AsyncGenerator<Array<[Buffer, Buffer]>> {
    const it = this.db.iterator({ gte, lt, keyEncoding: "buffer", valueEncoding: "buffer" });
    this.iterators.add(it);
    try {
      for (;;) {
        const entries = await this.io(() => it.nextv(1000));
        if (entries.length === 0) return;
        yield entries;
      }
    } finally {
      this.iterators.delete(it);
      await it.close();
    }
  }

  /** @internal */
  async *_windowsEndingBefore(p: number, time: number): AsyncGenerator<WindowEntry<V>> {
    this.assertOpen();
    checkTime(time, "time");
    const part = this.part(p);
    // Uncheckpointed windows ending before `time`, sorted.
    const overlay: WindowEntry<V>[] = [];
    const collect = (
      changes: PartitionChanges | undefined,
      shadow: PartitionChanges | undefined,
    ) => {
      if (changes === undefined || changes.windowCount === 0 || changes.minEnd >= time) return;
      let min = Number.POSITIVE_INFINITY;
      for (const [key, byStart] of changes.windows) {
        for (const w of byStart.values()) {
          if (w.value === TOMBSTONE) continue;
          if (w.end < min) min = w.end;
          if (w.end < time && shadow?.getWindow(key, w.start) === undefined) {
            overlay.push({ key, windowStart: w.start, windowEnd: w.end, value: w.value as V });
          }
        }
      }
      changes.minEnd = min;
    };
    collect(part.dirty, undefined);
    collect(part.pending, part.dirty);
    overlay.sort(compareWindows);
    let oi = 0;
    const lower = partitionPrefix(p, T_INDEX);
    const upper = Buffer.allocUnsafe(13);
    lower.copy(upper, 0);
    writeTime(upper, 5, time);
    for await (const keys of this.scanKeys(lower, upper)) {
      // one getMany per slice for the windows that are not cached (closed
      // windows are about to be emitted and deleted: they are not cached)
      const items: Array<{ end: number; start: number; key: string; raw: Buffer | undefined }> = [];
      const missing: Buffer[] = [];
      const missingAt: number[] = [];
      for (const ik of keys) {
        const { end, start, key } = parseIndexKey(ik);
        if (
          part.dirty.getWindow(key, start) !== undefined ||
          part.pending?.getWindow(key, start) !== undefined
        ) {
          continue; // the overlay has the current version
        }
        const raw = this.cache.get(windowCacheKey(p, key, start));
        if (raw === undefined) {
          this.misses++;
          missingAt.push(items.length);
          missing.push(windowKey(p, key, start));
        } else {
          this.hits++;
        }
        items.push({ end, start, key, raw });
      }
      if (missing.length > 0) {
        const raws = await this.io(() => this.db.getMany(missing));
        for (let i = 0; i < raws.length; i++) items[missingAt[i]!]!.raw = raws[i] ?? ABSENT;
      }
      for (const { end, start, key, raw } of items) {
        if (raw === undefined || raw === ABSENT || readTime(raw, 0) !== end) continue; // stale index entry
        const entry = this.windowEntry(key, start, raw);
        while (oi < overlay.length && compareWindows(overlay[oi]!, entry) < 0) yield overlay[oi++]!;
        yield entry;
      }
    }
    while (oi < overlay.length) yield overlay[oi++]!;
  }

  /** @internal */
  async *_windowsForKey(p: number, key: string): AsyncGenerator<WindowEntry<V>> {
    this.assertOpen();
    checkKey(key);
    const part = this.part(p);
    const overlay: WindowEntry<V>[] = [];
    const seen = new Set<number>();
    for (const changes of [part.dirty, part.pending]) {
      const byStart = changes?.windows.get(key);
      if (!byStart) continue;
      for (const w of byStart.values()) {
        if (seen.has(w.start)) continue;
        seen.add(w.start);
        if (w.value !== TOMBSTONE)
          overlay.push({ key, windowStart: w.start, windowEnd: w.end, value: w.value as V });
      }
    }
    overlay.sort((a, b) => a.windowStart - b.windowStart);
    let oi = 0;
    const prefix = windowKeyPrefix(p, key);
    for await (const entries of this.scanEntries(prefix, prefixEnd(prefix))) {
      for (const [k, raw] of entries) {
        if (k.length !== prefix.length + 8) continue;
        const { start } = parseWindowKey(k);
        if (seen.has(start)) continue;
        const entry = this.windowEntry(key, start, raw);
        while (oi < overlay.length && overlay[oi]!.windowStart < start) yield overlay[oi++]!;
        yield entry;
      }
    }
    while (oi < overlay.length) yield overlay[oi++]!;
  }

  /** @internal */
  async *_entries(p: number): AsyncGenerator<[string, V]> {
    this.assertOpen();
    const part = this.part(p);
    const shadow = (key: string) => part.dirty.kv.has(key) || part.pending?.kv.has(key) === true;
    const prefix = partitionPrefix(p, T_KV);
    for await (const entries of this.scanEntries(prefix, prefixEnd(prefix))) {
      for (const [k, raw] of entries) {
        const key = k.toString("utf8", 5);
        if (!shadow(key)) yield [key, this.decode(raw, key)];
      }
    }
    const seen = new Set<string>();
    for (const changes of [part.dirty, part.pending]) {
      if (!changes) continue;
      for (const [key, v] of changes.kv) {
        if (seen.has(key)) continue;
        seen.add(key);
        if (v !== TOMBSTONE) yield [key, v as V];
      }
    }
  }

  /** @internal */
  async _expire(p: number, time: number, limit: number): Promise<number> {
    const victims: WindowEntry<V>[] = [];
    for await (const w of this._windowsEndingBefore(p, time)) {
      victims.push(w);
      if (victims.length >= limit) break;
    }
    for (const w of victims) this._putWindow(p, w.key, w.windowStart, 0, TOMBSTONE);
    return victims.length;
  }

  /**
   * @internal Applies changelog records (key without partition prefix) to a
   * partition directly on disk. `delta` means the partition already has
   * state, so old index entries of changed windows are looked up and removed.
   */
  async [kApplyChangelog](
    p: number,
    records: ReadonlyArray<{ key: Buffer; value: Buffer | null }>,
    delta: boolean,
  ): Promise<void> {
    this.assertOpen();
    // Windows: only the last version in this slice counts (each version would
    // otherwise leave an index entry). Key-value records go in log order.
    let windows: Map<string, { key: Buffer; value: Buffer | null }> | undefined;
    for (const r of records) {
      const k = r.key;
      if (k.length < 5 || k.readUInt32BE(0) !== p) {
        throw new StateError(
          "STATE_RESTORE_FAILED",
          `changelog partition ${p} holds a record of another partition or format (key ${k.toString("hex").slice(0, 40)}); is the topic shared with another store?`,
        );
      }
      if (k[4] === T_WINDOW) {
        windows ??= new Map();
        windows.set(k.toString("latin1"), r);
      }
    }
    const windowRecords = windows ? [...windows.values()] : [];
    // the index entries of the versions being replaced
    const olds =
      delta && windowRecords.length > 0
        ? await this.io(() => this.db.getMany(windowRecords.map((r) => r.key)))
        : [];
    const batch = this.db.batch();
    try {
      for (let i = 0; i < olds.length; i++) {
        const old = olds[i];
        if (old === undefined) continue;
        const { key, start } = parseWindowKey(windowRecords[i]!.key);
        batch.del(indexKey(p, readTime(old, 0), start, key));
      }
      for (const r of records) {
        if (r.key[4] !== T_KV) continue; // T_META: restore writes its own checkpoint metadata
        if (r.value === null) batch.del(r.key);
        else batch.put(r.key, r.value);
      }
      for (const r of windowRecords) {
        if (r.value === null) {
          batch.del(r.key);
        } else {
          batch.put(r.key, r.value);
          const { key, start } = parseWindowKey(r.key);
          batch.put(indexKey(p, readTime(r.value, 0), start, key), EMPTY);
        }
      }
    } catch (err) {
      await batch.close().catch(() => {});
      throw err;
    }
    try {
      await batch.write();
    } catch (err) {
      throw new StateError(
        "STATE_RESTORE_FAILED",
        `writing restored records of partition ${p} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** @internal */
  async [kDiscardChanges](p: number): Promise<void> {
    this.assertOpen();
    const part = this.part(p);
    await part.chain;
    this.setDirty(part, new PartitionChanges());
    part.pending = undefined;
    this.dropCachedPartition(p);
  }

  /** @internal Records where a restore of `p` ended. */
  async [kWriteRestoredCheckpoint](p: number, meta: CheckpointMetadata): Promise<void> {
    this.assertOpen();
    const part = this.part(p);
    this.setDirty(part, new PartitionChanges());
    part.pending = undefined;
    await this.io(() =>
      this.db.put(metaKey(p, CHECKPOINT_META), Buffer.from(JSON.stringify(meta))),
    );
  }
}

/**
 * Opens (or creates) a state store at `<dir>/<name>`. A corrupt or unreadable
 * directory is discarded and reopened empty by default (`openedFrom` is then
 * `"reset-after-corruption"` and partitions must be restored from their
 * changelog), or reported with `STATE_CORRUPT` when `onCorruption: "error"`.
 *
 * @param opts - see {@link StateStoreOptions}
 * @returns the open store
 * @throws StateError `STATE_INVALID_OPTIONS`, `STATE_LOCKED`, `STATE_CORRUPT`, `STATE_OPEN_FAILED`
 * @example
 * ```ts
 * await using store = await openStateStore({ dir: "/var/lib/app/state", name: "counts", cacheMaxBytes: 32 << 20 });
 * const p = store.partition(0);
 * await p.put("user-1", { clicks: 1 });
 * await store.checkpoint({ partition: 0, sourceOffset: "101", streamTime: Date.now() });
 * ```
 * @since 0.1.0
 */
export async function openStateStore<V = unknown>(
  opts: StateStoreOptions<V>,
): Promise<StateStore<V>> {
  const store = new StateStore<V>(opts);
  await store._open();
  return store;
}
