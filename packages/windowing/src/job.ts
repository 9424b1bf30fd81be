import { registerCompressionCodecs } from "@sluice/producer";
import { type Duration, parseDuration } from "@sluice/schema";
import type { Kafka } from "kafkajs";
import { type AggregateResult, type AggregationSpec, combine } from "./aggregations.js";
import type { JobDefinition, Step } from "./internal/definition.js";
import { StreamJoinOperator, TableJoinOperator } from "./internal/join-operator.js";
import type { KafkaRuntime } from "./internal/kafka-runtime.js";
import type { OperatorFactory } from "./internal/operator.js";
import { PatternOperator } from "./internal/pattern-operator.js";
import type {
  Enriched,
  Joined,
  JoinStream,
  JoinTable,
  StreamJoinOptions,
  TableJoinOptions,
} from "./joins.js";
import type { PatternBuilder } from "./patterns.js";
import { isSink, type Sink } from "./sink.js";
import {
  type EmitMode,
  type EmitOptions,
  type LateRecord,
  resolveEmit,
  type WindowResult,
} from "./window-result.js";
import { WindowingError } from "./windowing-error.js";
import type { WindowSpec } from "./windows.js";

/**
 * How the source value is decoded: any object with `decode(bytes)`, such as
 * a `@sluice/schema` codec from `defineSchema(...)`. `decode` throws for
 * undecodable or schema-invalid input; such records go to the DLQ.
 *
 * @since 0.1.0
 */
export interface SourceCodec<T> {
  decode(bytes: Buffer): T;
}

/**
 * Where a job reads from.
 *
 * @since 0.1.0
 */
export interface SourceOptions<T> {
  /** The input topic. */
  topic: string;
  /** Decoder/validator of the record value. */
  schema: SourceCodec<T>;
  /**
   * Event time: a field name holding epoch ms or an ISO-8601 string, or a
   * function of the decoded value and the record timestamp.
   * @defaultValue the Kafka record timestamp
   */
  eventTime?: string | ((value: T, recordTimestamp: number) => number);
}

/**
 * Options of {@link createJob}.
 *
 * @since 0.1.0
 */
export interface JobOptions<T> {
  /** A kafkajs `Kafka` instance; or give `brokers`. */
  kafka?: Kafka;
  /** Broker addresses, used when `kafka` is not given. */
  brokers?: string[];
  /** Consumer group id, prefix of internal topics and transactional ids. */
  applicationId: string;
  source: SourceOptions<T>;
  /**
   * Directory of the local state: the LevelDB copy of the changelog and,
   * exactly-once, the member's transactional id (a process restarted on the
   * same directory fences its previous incarnation). One process at a time.
   */
  stateDir: string;
  /**
   * Exactly-once: one transaction per commit, its offsets fenced by the
   * member's group generation; needs the kafkajs copy Sluice is built on.
   * @defaultValue 'exactly-once'
   */
  guarantee?: "exactly-once" | "at-least-once";
  /** How often state, outputs and offsets commit. @defaultValue 100 ms exactly-once, 1000 ms at-least-once */
  commitIntervalMs?: Duration;
  /** Advance a partition's stream time with the wall clock after it has been idle this long. @defaultValue off */
  idleCloseMs?: Duration;
  /** Dead-letter topic for undecodable/invalid records. @defaultValue `<applicationId>-dlq` */
  dlqTopic?: string;
  /** Partitions of internal topics created by the job. @defaultValue the source's partition count */
  replicationFactor?: number;
  /** Stop the job on SIGTERM/SIGINT. @defaultValue true */
  handleSignals?: boolean;
  /** Consumer session timeout. @defaultValue 30000 */
  sessionTimeoutMs?: number;
  /**
   * Exactly-once: how long the broker lets one of the member's transactions
   * stay open before it aborts it (the producer's `transaction.timeout.ms`,
   * from 1 s to 15 min; the broker's `transaction.max.timeout.ms` must allow
   * it). A member that dies mid-commit holds its partitions' changelog and
   * offsets unstable this long (plus up to the broker's 10 s abort check),
   * and their new owner waits for them; a commit that takes longer is
   * refused and its partitions replayed. @defaultValue 10000, as Kafka
   * Streams
   */
  transactionTimeoutMs?: Duration;
  /** Results buffered before partitions pause (backpressure). @defaultValue 50000 */
  maxBufferedResults?: number;
  /**
   * Write each commit's transactions while the next records are processed
   * (at most one commit in flight). Faster when every output is a topic and
   * there is no `keyBy`/join (ignored otherwise), but a rebalance can take
   * longer: the previous owner's transaction still being written delays the
   * new owner's fencing. At-least-once, such a commit also takes its
   * partitions' changed state a few partitions at a time, with batches
   * processed in between, so that it does not hold the event loop for the
   * whole of it.
   * @defaultValue false
   */
  pipelineCommits?: boolean;
  /**
   * No effect: each exactly-once commit is one transaction for all of the
   * member's partitions. It used to set how many partitions' transactions a
   * commit wrote at once, when each partition had its own. Still validated
   * (a whole number from 1 to 64). @defaultValue 1
   * @deprecated one transaction per commit; remove the option
   */
  transactionConcurrency?: number;
}

/** @internal resolved options */
export interface ResolvedJobOptions {
  kafka?: Kafka;
  brokers?: string[];
  applicationId: string;
  topic: string;
  stateDir: string;
  guarantee: "exactly-once" | "at-least-once";
  commitIntervalMs: number;
  dlqTopic: string;
  replicationFactor: number;
  handleSignals: boolean;
  sessionTimeoutMs: number;
  transactionTimeoutMs: number;
  maxBufferedResults: number;
  pipelineCommits: boolean;
  transactionConcurrency: number;
}

function duration(value: Duration, name: string): number {
  try {
    return parseDuration(value, name);
  } catch (err) {
    throw new WindowingError("WINDOWING_INVALID_OPTIONS", (err as Error).message, { cause: err });
  }
}

function resolveEventTime(
  eventTime: SourceOptions<unknown>["eventTime"],
): ((value: unknown, ts: number) => number) | undefined {
  if (eventTime === undefined) return undefined;
  if (typeof eventTime === "function") return eventTime as (value: unknown, ts: number) => number;
  if (typeof eventTime === "string" && eventTime.length > 0) {
    const field = eventTime;
    return (value) => {
      const raw = (value as Record<string, unknown> | null)?.[field];
      if (typeof raw === "number") return raw;
      if (typeof raw === "string") return Date.parse(raw);
      return Number.NaN;
    };
  }
  throw new WindowingError(
    "WINDOWING_INVALID_OPTIONS",
    "source.eventTime must be a field name or a function (value, recordTimestamp) => epoch ms",
  );
}

/**
 * A stream-processing job: a fluent pipeline definition plus, when created
 * with {@link createJob}, its Kafka runtime. Steps run in order:
 * `filter`/`map`/`keyBy` per record, then `window` + `aggregate`, results to
 * every `to(...)` target.
 *
 * @typeParam T - the record type at this point of the pipeline
 * @typeParam V - the aggregate value type
 * @since 0.1.0
 */
export class Job<T, V = unknown> {
  /** @internal */
  readonly definition: JobDefinition;
  /** @internal */
  readonly options: ResolvedJobOptions | undefined;
  private runtime: KafkaRuntime | undefined;
  private stopped = false;

  /** @internal use {@link createJob} or {@link defineJob} */
  constructor(definition: JobDefinition, options?: ResolvedJobOptions) {
    this.definition = definition;
    this.options = options;
  }

  /** `'opening' | 'open' | 'closing' | 'closed'`; `'closed'` before `start()` too. */
  get status(): "opening" | "open" | "closing" | "closed" {
    return this.runtime?.status ?? "closed";
  }

  private mutable(): void {
    if (this.stopped)
      throw new WindowingError("WINDOWING_JOB_CLOSED", "the job was stopped; create a new one");
    if (this.runtime) {
      throw new WindowingError(
        "WINDOWING_ALREADY_STARTED",
        "the pipeline cannot change after start()",
      );
    }
  }

  private step(step: Step): void {
    this.mutable();
    if (this.definition.window || this.definition.operator) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `${step.kind}() must come before window(), join(), joinTable() or match(); steps after them are not supported`,
      );
    }
    if (typeof step.fn !== "function") {
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", `${step.kind}() needs a function`);
    }
    this.definition.steps.push(step);
  }

  /**
   * Keeps records for which `fn` returns true.
   *
   * @param fn - predicate
   * @returns this job
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` after `window()`
   * @example
   * ```ts
   * job.filter((e) => e.type === "purchase")
   * ```
   */
  filter(fn: (value: T) => boolean): Job<T, V> {
    this.step({ kind: "filter", fn: fn as (v: unknown) => boolean });
    return this;
  }

  /**
   * Transforms each record.
   *
   * @param fn - mapping function
   * @returns this job, typed by the new record type
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` after `window()`
   * @example
   * ```ts
   * job.map((e) => ({ user: e.user_id, amount: e.amount }))
   * ```
   */
  map<U>(fn: (value: T) => U): Job<U, V> {
    this.step({ kind: "map", fn: fn as (v: unknown) => unknown });
    return this as unknown as Job<U, V>;
  }

  /**
   * Sets the window key. Without `keyBy` the key is the Kafka record key.
   * In a Kafka job, records go through the repartition topic
   * `<applicationId>-repartition` so each key lives in one partition.
   *
   * @param fn - returns the key string
   * @returns this job
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` after `window()`
   * @example
   * ```ts
   * job.keyBy((e) => e.country)
   * ```
   */
  keyBy(fn: (value: T) => string): Job<T, V> {
    this.step({ kind: "keyBy", fn: fn as (v: unknown) => string });
    return this;
  }

  /**
   * Sets the window type.
   *
   * @param spec - from `tumbling`, `hopping`, `sliding` or `session`
   * @returns this job
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` when set twice or not a window
   * @example
   * ```ts
   * job.window(tumbling({ size: "1m" }))
   * ```
   */
  window(spec: WindowSpec): Job<T, V> {
    this.mutable();
    if (this.definition.window)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "window() was already set");
    this.noOperator("window()");
    if (
      !spec ||
      !["tumbling", "hopping", "sliding", "session"].includes((spec as WindowSpec).type)
    ) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "window() needs tumbling(), hopping(), sliding() or session()",
      );
    }
    this.definition.window = spec;
    return this;
  }

  /**
   * Sets the aggregation: one aggregator or an object of them.
   *
   * @param spec - e.g. `count()` or `{ n: count(), total: sum((e) => e.amount) }`
   * @returns this job, typed by the result value
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` before `window()`, when set twice, or for a session window without `merge`
   * @example
   * ```ts
   * job.aggregate({ events: count(), spend: sum((e) => e.amount) })
   * ```
   */
  aggregate<S extends AggregationSpec<T>>(spec: S): Job<T, AggregateResult<S>> {
    this.mutable();
    if (!this.definition.window) {
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "aggregate() must come after window()");
    }
    if (this.definition.aggregator) {
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "aggregate() was already set");
    }
    const agg = combine(spec as AggregationSpec<unknown>);
    if (this.definition.window.type === "session" && typeof agg.merge !== "function") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "session windows need an aggregator with merge(a, b)",
      );
    }
    this.definition.aggregator = agg;
    return this as unknown as Job<T, AggregateResult<S>>;
  }

  private noOperator(what: string): void {
    if (this.definition.operator) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `${what} cannot follow join(), joinTable() or match(): a job has one stateful step`,
      );
    }
    if (this.definition.window && what !== "window()") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `${what} cannot follow window(): a job has one stateful step`,
      );
    }
  }

  /** Adds a second source whose records meet this source's in the repartition topic. */
  private addSource(
    what: string,
    topic: string,
    schema: SourceCodec<unknown> | undefined,
    build: (side: JobDefinition) => void,
  ): void {
    this.mutable();
    this.noOperator(what);
    if (typeof topic !== "string" || topic.length === 0)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", `${what} needs a topic`);
    if (this.options && topic === this.options.topic) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `${what} needs a topic other than the job's source '${topic}'`,
      );
    }
    if (schema !== undefined && typeof schema?.decode !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", `${what}: schema needs decode(bytes)`);
    if (this.options && schema === undefined)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", `${what} needs a schema`);
    const side: JobDefinition = {
      steps: [],
      emit: { kind: "final" },
      outputs: [],
      late: [],
      repartitionAlways: true,
    };
    if (schema) side.schema = schema;
    build(side);
    side.steps.push({ kind: "map", fn: (v) => ({ s: 1, v }) });
    this.definition.steps.push({ kind: "map", fn: (v) => ({ s: 0, v }) });
    this.definition.repartitionAlways = true;
    this.definition.sources = { ...this.definition.sources, [topic]: side };
  }

  private setOperator(factory: OperatorFactory): void {
    this.definition.operator = factory;
    for (const side of Object.values(this.definition.sources ?? {})) side.operator = factory;
  }

  /**
   * Stream–stream windowed join with another keyed stream: records of the
   * same key whose event times differ by at most `within` are joined, each
   * pair emitted once. `left` and `outer` joins also emit a record that
   * found no partner, once stream time has passed its event time + within +
   * grace. Stream time is the lower of the two sides' highest event times,
   * so a side read ahead of the other waits in state rather than making the
   * other late. Records later than `grace` go to the late output. Both sides are
   * buffered in durable state (changelog), with the same exactly-once and
   * restore guarantees as windows. In a Kafka job both topics go through the
   * repartition topic, so they must have the same partition count
   * (`WINDOWING_NOT_COPARTITIONED` otherwise) and any keys may be used.
   *
   * Result identity: `leftTime:leftOcc:rightTime:rightOcc:key` (`-` for a
   * missing side), where `Occ` numbers records of one key, side and event
   * time in arrival order.
   *
   * @param other - the right stream: `topic`, `schema`, `eventTime`, `keyBy`
   * @param opts - `within`, `grace`, `type`, `select`
   * @returns this job, typed by the joined value
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for invalid options or a second stateful step
   * @example
   * ```ts
   * job.join({ topic: "purchases", schema: Purchase, eventTime: "ts" },
   *          { within: "10m", grace: "1m", type: "left" })
   *    .to({ topic: "clicks-with-purchases" });
   * ```
   */
  join<R, U = Joined<T, R>>(other: JoinStream<R>, opts: StreamJoinOptions<T, R, U>): Job<T, U> {
    if (typeof other !== "object" || other === null)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "join() needs { topic, schema }");
    if (typeof opts !== "object" || opts === null || opts.within === undefined)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "join() needs { within }");
    const type = opts.type ?? "inner";
    if (!["inner", "left", "outer"].includes(type)) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `join type must be 'inner', 'left' or 'outer'; got ${JSON.stringify(type)}`,
      );
    }
    const withinMs = duration(opts.within, "within");
    const graceMs = duration(opts.grace ?? 0, "grace");
    if (opts.select !== undefined && typeof opts.select !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "join select must be a function");
    const select = (opts.select ?? ((left: unknown, right: unknown) => ({ left, right }))) as (
      l: unknown,
      r: unknown,
    ) => unknown;
    this.addSource("join()", other.topic, other.schema as SourceCodec<unknown>, (side) => {
      const et = resolveEventTime(other.eventTime as SourceOptions<unknown>["eventTime"]);
      if (et) side.eventTime = et;
      if (other.keyBy !== undefined) {
        if (typeof other.keyBy !== "function")
          throw new WindowingError("WINDOWING_INVALID_OPTIONS", "join keyBy must be a function");
        side.steps.push({ kind: "keyBy", fn: other.keyBy as (v: unknown) => string });
      }
    });
    const cfg = { type, withinMs, graceMs, select } as const;
    this.setOperator((p) => new StreamJoinOperator(cfg, p));
    return this as unknown as Job<T, U>;
  }

  /**
   * Stream–table join: each record is joined with the current row of its
   * key in a table materialized from a (compacted) topic — latest value per
   * key, `null` values (tombstones) delete — kept in durable state. In a
   * Kafka job both topics go through the repartition topic (same partition
   * count required, `WINDOWING_NOT_COPARTITIONED` otherwise); a record sees
   * the table as of its position in that topic. Result identity:
   * `windowResultId(key, t, t + 1, n)` with `n` the record's sequence number
   * within its key.
   *
   * @param table - `topic` and `schema` of the table
   * @param opts - `type` (`'inner'` or `'left'`) and `select`
   * @returns this job, typed by the enriched value
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for invalid options or a second stateful step
   * @example
   * ```ts
   * job.joinTable({ topic: "profiles", schema: Profile }, { type: "left",
   *   select: (e, p) => ({ ...e, country: p?.country ?? "unknown" }) })
   * ```
   */
  joinTable<R, U = Enriched<T, R>>(
    table: JoinTable<R>,
    opts: TableJoinOptions<T, R, U> = {},
  ): Job<T, U> {
    if (typeof table !== "object" || table === null)
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "joinTable() needs { topic, schema }");
    const type = opts.type ?? "inner";
    if (type !== "inner" && type !== "left") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `joinTable type must be 'inner' or 'left'; got ${JSON.stringify(type)}`,
      );
    }
    if (opts.select !== undefined && typeof opts.select !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "joinTable select must be a function");
    const select = (opts.select ?? ((value: unknown, row: unknown) => ({ value, row }))) as (
      v: unknown,
      r: unknown,
    ) => unknown;
    this.addSource("joinTable()", table.topic, table.schema as SourceCodec<unknown>, (side) => {
      side.tombstones = true;
    });
    const cfg = { type, select } as const;
    this.setOperator((p) => new TableJoinOperator(cfg, p));
    return this as unknown as Job<T, U>;
  }

  /**
   * Detects a {@link PatternBuilder | pattern} per key (the record key, or
   * `keyBy`): each match is emitted once, with the events that formed it.
   * Records are matched in event-time order once stream time has passed
   * their time + the pattern's grace; later records go to the late output.
   * Partial matches live in durable state and expire with the bound.
   *
   * @param p - from {@link pattern}
   * @returns this job, typed by the match value
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for an invalid pattern or a second stateful step
   * @example
   * ```ts
   * job.match(pattern<Ev>({ within: "30m" })
   *   .step("view", (e) => e.type === "page_view")
   *   .step("cart", (e) => e.type === "add_to_cart")
   *   .notFollowedBy("purchase", (e) => e.type === "purchase"))
   * ```
   */
  match<U>(p: PatternBuilder<T, U>): Job<T, U> {
    this.mutable();
    this.noOperator("match()");
    if (!p || typeof (p as { config?: unknown }).config !== "function")
      throw new WindowingError("WINDOWING_INVALID_OPTIONS", "match() needs a pattern(...)");
    const cfg = p.config();
    this.setOperator((partition) => new PatternOperator(cfg, partition));
    return this as unknown as Job<T, U>;
  }

  /**
   * Sets when results are emitted. With session windows and a mode other
   * than `'final'`, a session that had results emitted and then merges into
   * another is withdrawn with a retraction (`retracted: true`), unless
   * `options.retractions` is false.
   *
   * @param mode - `'final'`, `'update'` or `{ everyMs }`
   * @param options - `{ retractions }` (default true)
   * @returns this job
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for an unknown mode or a non-boolean `retractions`
   * @defaultValue 'final'
   * @example
   * ```ts
   * job.emit({ everyMs: "10s" })
   * job.emit("update", { retractions: false }) // sessions: no retractions
   * ```
   */
  emit(mode: EmitMode, options: EmitOptions = {}): Job<T, V> {
    this.mutable();
    const retractions = options.retractions ?? true;
    if (typeof retractions !== "boolean") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        `emit retractions must be true or false; got ${JSON.stringify(retractions)}`,
      );
    }
    this.definition.emit = resolveEmit(mode);
    this.definition.retractions = retractions;
    return this;
  }

  /**
   * Adds a result target: a sink (contract of `@sluice/sinks`), an output
   * topic (`{ topic }`, JSON values keyed by the window key, inside the
   * exactly-once transaction), or a callback.
   *
   * @param target - sink, `{ topic }` or `(results) => void | Promise<void>`
   * @returns this job
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for anything else
   * @example
   * ```ts
   * job.to({ topic: "user-minute-counts" }).to(clickhouseSink)
   * ```
   */
  to(
    target:
      | Sink<WindowResult<V>>
      | { topic: string }
      | ((results: readonly WindowResult<V>[]) => void | Promise<void>),
  ): Job<T, V> {
    this.mutable();
    if (typeof target === "function") {
      this.definition.outputs.push({ kind: "callback", fn: target as never });
    } else if (isSink(target)) {
      this.definition.outputs.push({ kind: "sink", sink: target as never });
    } else if (target && typeof (target as { topic?: unknown }).topic === "string") {
      this.definition.outputs.push({ kind: "topic", topic: (target as { topic: string }).topic });
    } else {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "to() needs a sink, { topic } or a callback",
      );
    }
    return this;
  }

  /**
   * Where late records go: a topic (`{ topic }`) or a callback. They are
   * always counted (`sluice:job:late`). Without `onLate` a Kafka job writes
   * them to `<applicationId>-late`.
   *
   * @param target - `{ topic }` or `(late) => void | Promise<void>`
   * @returns this job
   * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for anything else
   * @example
   * ```ts
   * job.onLate((r) => console.warn("late", r.key, r.timestamp))
   * ```
   */
  onLate(target: { topic: string } | ((late: LateRecord<T>) => void | Promise<void>)): Job<T, V> {
    this.mutable();
    if (typeof target === "function")
      this.definition.late.push({ kind: "callback", fn: target as never });
    else if (target && typeof target.topic === "string")
      this.definition.late.push({ kind: "topic", topic: target.topic });
    else
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "onLate() needs { topic } or a callback",
      );
    return this;
  }

  /**
   * Connects to Kafka, restores state and starts processing. Resolves once
   * the consumer has joined its group.
   *
   * @returns a promise resolving when running
   * @throws WindowingError `WINDOWING_PIPELINE_INCOMPLETE` without window/aggregate; `WINDOWING_INVALID_OPTIONS` for a job from `defineJob`; `WINDOWING_ALREADY_STARTED`; `WINDOWING_JOB_CLOSED`; `WINDOWING_KAFKA_FAILED`
   * @example
   * ```ts
   * await job.start();
   * ```
   */
  async start(): Promise<void> {
    if (this.stopped)
      throw new WindowingError("WINDOWING_JOB_CLOSED", "the job was stopped; create a new one");
    if (this.runtime)
      throw new WindowingError("WINDOWING_ALREADY_STARTED", "start() was already called");
    assertComplete(this.definition);
    if (!this.options) {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "this job was made by defineJob() and has no Kafka options; use createJob() or a TestDriver",
      );
    }
    const { KafkaRuntime } = await import("./internal/kafka-runtime.js");
    this.runtime = new KafkaRuntime(this.definition, this.options);
    await this.runtime.start();
  }

  /**
   * Drains the in-flight batch, commits (state, outputs, offsets), closes
   * sinks and disconnects. Idempotent.
   *
   * @returns a promise resolving when closed
   * @example
   * ```ts
   * await job.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.runtime?.stop();
  }

  /** Same as {@link Job.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** @internal */
export function assertComplete(def: JobDefinition): void {
  if (def.operator) return;
  if (!def.window || !def.aggregator) {
    throw new WindowingError(
      "WINDOWING_PIPELINE_INCOMPLETE",
      "the job needs window(...) and aggregate(...), join(...), joinTable(...) or match(...) before it can run",
    );
  }
}

function baseDefinition(
  source?: Partial<SourceOptions<unknown>>,
  idleCloseMs?: Duration,
): JobDefinition {
  const def: JobDefinition = { steps: [], emit: { kind: "final" }, outputs: [], late: [] };
  const et = resolveEventTime(source?.eventTime);
  if (et) def.eventTime = et;
  if (source?.schema) {
    if (typeof source.schema.decode !== "function") {
      throw new WindowingError(
        "WINDOWING_INVALID_OPTIONS",
        "source.schema needs a decode(bytes) method",
      );
    }
    def.schema = source.schema as { decode(b: Buffer): unknown };
  }
  if (idleCloseMs !== undefined) def.idleCloseMs = duration(idleCloseMs, "idleCloseMs");
  return def;
}

/**
 * Defines a pipeline without Kafka, for a {@link createTestDriver | TestDriver}
 * or as an embedded engine.
 *
 * @param opts - optional `source` (`schema`, `eventTime`) and `idleCloseMs`
 * @returns a job definition whose `start()` rejects
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for an invalid option
 * @example
 * ```ts
 * const job = defineJob<Click>({ source: { eventTime: "ts" } }).window(tumbling({ size: "1m" })).aggregate(count());
 * ```
 * @since 0.1.0
 */
export function defineJob<T>(
  opts: {
    source?: { schema?: SourceCodec<T>; eventTime?: SourceOptions<T>["eventTime"] };
    idleCloseMs?: Duration;
  } = {},
): Job<T> {
  return new Job<T>(
    baseDefinition(opts.source as Partial<SourceOptions<unknown>>, opts.idleCloseMs),
  );
}

/**
 * Creates a Kafka stream-processing job. Nothing connects until `start()`.
 *
 * @param opts - see {@link JobOptions}
 * @returns a {@link Job} to configure fluently and start
 * @throws WindowingError `WINDOWING_INVALID_OPTIONS` for a missing or invalid option
 * @defaultValue guarantee = 'exactly-once'
 * @example
 * ```ts
 * const job = createJob({ brokers: ["127.0.0.1:9092"], applicationId: "aggregator",
 *   source: { topic: "events", schema: UserEvent, eventTime: "ts" }, stateDir: "./state" })
 *   .window(tumbling({ size: "1m" }))
 *   .aggregate({ events: count() })
 *   .to({ topic: "user-minute-counts" });
 * await job.start();
 * ```
 * @since 0.1.0
 */
export function createJob<T>(opts: JobOptions<T>): Job<T> {
  if (typeof opts !== "object" || opts === null) {
    throw new WindowingError("WINDOWING_INVALID_OPTIONS", "createJob needs an options object");
  }
  const bad = (msg: string): never => {
    throw new WindowingError("WINDOWING_INVALID_OPTIONS", msg);
  };
  if (!opts.kafka && !(Array.isArray(opts.brokers) && opts.brokers.length > 0)) {
    bad("createJob needs kafka (a kafkajs Kafka) or brokers (['host:port'])");
  }
  if (typeof opts.applicationId !== "string" || !/^[A-Za-z0-9._-]+$/.test(opts.applicationId)) {
    bad(
      `applicationId must be a non-empty string of letters, digits, '.', '_' or '-'; got ${JSON.stringify(opts.applicationId)}`,
    );
  }
  if (!opts.source || typeof opts.source.topic !== "string" || opts.source.topic.length === 0) {
    bad("source.topic is required");
  }
  if (!opts.source.schema || typeof opts.source.schema.decode !== "function") {
    bad("source.schema is required: an object with decode(bytes), e.g. from defineSchema()");
  }
  if (typeof opts.stateDir !== "string" || opts.stateDir.length === 0) bad("stateDir is required");
  const guarantee = opts.guarantee ?? "exactly-once";
  if (guarantee !== "exactly-once" && guarantee !== "at-least-once") {
    bad(`guarantee must be 'exactly-once' or 'at-least-once'; got ${JSON.stringify(guarantee)}`);
  }
  const commitIntervalMs = duration(
    opts.commitIntervalMs ?? (guarantee === "exactly-once" ? 100 : 1000),
    "commitIntervalMs",
  );
  const transactionTimeoutMs = duration(
    opts.transactionTimeoutMs ?? 10_000,
    "transactionTimeoutMs",
  );
  if (transactionTimeoutMs < 1_000 || transactionTimeoutMs > 900_000) {
    bad(
      `transactionTimeoutMs must be from 1 s to 15 min; got ${JSON.stringify(opts.transactionTimeoutMs)}`,
    );
  }
  if (opts.pipelineCommits !== undefined && typeof opts.pipelineCommits !== "boolean") {
    bad(`pipelineCommits must be a boolean; got ${JSON.stringify(opts.pipelineCommits)}`);
  }
  const transactionConcurrency = opts.transactionConcurrency ?? 1;
  if (
    !Number.isInteger(transactionConcurrency) ||
    transactionConcurrency < 1 ||
    transactionConcurrency > 64
  ) {
    bad(
      `transactionConcurrency must be a whole number from 1 to 64; got ${JSON.stringify(opts.transactionConcurrency)}`,
    );
  }
  const resolved: ResolvedJobOptions = {
    applicationId: opts.applicationId,
    topic: opts.source.topic,
    stateDir: opts.stateDir,
    guarantee,
    commitIntervalMs: Math.max(1, commitIntervalMs),
    dlqTopic: opts.dlqTopic ?? `${opts.applicationId}-dlq`,
    replicationFactor: opts.replicationFactor ?? 1,
    handleSignals: opts.handleSignals ?? true,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
    transactionTimeoutMs,
    maxBufferedResults: opts.maxBufferedResults ?? 50_000,
    pipelineCommits: opts.pipelineCommits ?? false,
    transactionConcurrency,
  };
  if (opts.kafka) resolved.kafka = opts.kafka;
  if (opts.brokers) resolved.brokers = opts.brokers;
  // Topics written by @sluice/producer are lz4-compressed by default; kafkajs
  // can only read lz4, snappy and zstd batches once their codecs are registered.
  registerCompressionCodecs();
  return new Job<T>(
    baseDefinition(opts.source as SourceOptions<unknown>, opts.idleCloseMs),
    resolved,
  );
}
