import {
  type Duration,
  type EventSchema,
  frameConfluent,
  HEADERS,
  JSON_CONTENT_TYPE,
  parseDuration,
  SchemaError,
  type SchemaRegistry,
  SluiceError,
} from "@sluice/schema";
import type { Kafka } from "kafkajs";
import { type Compression, registerCompressionCodecs } from "./compression.js";
import { type BatchMessage, batchChannel, invalidChannel } from "./internal/channels.js";
import { toKafkaCompression } from "./internal/compression-type.js";
import {
  createKafkaAdapter,
  type KafkaAdapter,
  type OutgoingMessage,
  type TopicBatch,
} from "./internal/kafka-adapter.js";
import { activeTraceparent } from "./internal/trace.js";
import { murmur2Partitioner, type Partitioner } from "./partitioner.js";
import { ProducerError } from "./producer-error.js";

/**
 * Options of {@link createProducer}.
 *
 * @since 0.1.0
 */
export interface ProducerOptions<T> {
  /** A kafkajs client to use. Either `kafka` or `brokers` is required. */
  kafka?: Kafka;
  /** Bootstrap brokers (`'127.0.0.1:9092'` or a list), when no `kafka` client is given. */
  brokers?: string | readonly string[];
  /** Topic to produce to. */
  topic: string;
  /** The event codec (see `defineSchema` in `@sluice/schema`). */
  schema: EventSchema<T>;
  /**
   * A schema registry: the schema is registered (once) before the first
   * event is sent, so every record carries its id. Without it, the id header
   * is written only when `schema.id` is already set.
   */
  registry?: SchemaRegistry;
  /**
   * Record key: a property name of the event or a function of the event.
   * @defaultValue `'user_id'`
   */
  key?: (keyof T & string) | ((event: T) => string | Buffer | null | undefined);
  /**
   * Event time in epoch ms: a property name (number, or ISO string) or a function.
   * Written as the record timestamp and in the `sluice-event-time` header.
   * @defaultValue `'ts'`, falling back to the send time when the event has none
   */
  eventTime?: (keyof T & string) | ((event: T) => number | undefined);
  /** Custom partitioner. @defaultValue murmur2, identical to the Java client */
  partitioner?: Partitioner;
  /** How long a partition's batch may wait for more events. @defaultValue 5 */
  lingerMs?: Duration;
  /**
   * Largest batch per partition, in events. With kafkajs's own encoder
   * (`recordEncoder: 'kafkajs'`, or the fallback) keep it at a few hundred:
   * kafkajs groups a request's records by partition in time that grows with
   * the square of the records per partition. Sluice's encoder hands kafkajs
   * one message per partition, so there the cost is linear.
   * @defaultValue 200
   */
  maxBatchMessages?: number;
  /** Largest batch per partition, in encoded bytes (keep under the topic's max.message.bytes). @defaultValue 524288 */
  maxBatchBytes?: number;
  /** Bound on encoded bytes held (buffered or in flight); `send()` waits when full. @defaultValue 33554432 */
  maxBufferedBytes?: number;
  /** Batch compression. @defaultValue `'lz4'` */
  compression?: Compression;
  /** What to do with an event that fails validation. @defaultValue `'reject'` */
  onInvalid?: "reject" | "dlq";
  /** Dead-letter topic. @defaultValue `` `${topic}.dlq` `` */
  dlqTopic?: string;
  /** Acknowledgements required. @defaultValue `'all'` */
  acks?: "all" | 1;
  /** Idempotent producer (broker de-duplicates retried batches). Requires acks `'all'`. @defaultValue true */
  idempotent?: boolean;
  /** How long a batch is retried (broker unreachable, leader moving) before its sends reject. @defaultValue '2m' */
  deliveryTimeoutMs?: Duration;
  /** Broker-side timeout of one produce request. @defaultValue '30s' */
  requestTimeoutMs?: Duration;
  /** `'confluent'` prefixes payloads with magic byte 0 + 4-byte schema id (needs `schema.id`). @defaultValue `'none'` */
  framing?: "none" | "confluent";
  /** Add a W3C `traceparent` header when an OpenTelemetry span is active. @defaultValue true */
  traceparent?: boolean;
  /** kafkajs client id, when no `kafka` client is given. @defaultValue `'sluice-producer'` */
  clientId?: string;
  /**
   * Who writes the record batches. `'auto'`: Sluice's own encoder, which
   * writes the same bytes as kafkajs at a fraction of the cost, when the
   * installed kafkajs is the version it is pinned to (2.2.4) and the client
   * comes from that copy; kafkajs otherwise. `'sluice'`: the same, but
   * `createProducer` throws `PRODUCER_ENCODER_UNAVAILABLE` instead of
   * falling back. `'kafkajs'`: always kafkajs. Other kafkajs producers in
   * the process are never affected. See {@link Producer.recordEncoder}.
   * @defaultValue `'auto'`
   */
  recordEncoder?: "auto" | "sluice" | "kafkajs";
}

/**
 * Where an acknowledged event was written.
 *
 * @since 0.1.0
 */
export interface SendResult {
  /** The topic written (the dead-letter topic for an invalid event in `'dlq'` mode). */
  readonly topic: string;
  /** Partition written. */
  readonly partition: number;
  /** Offset of the record (decimal string). */
  readonly offset: string;
  /** True when the event was invalid and went to the dead-letter topic. */
  readonly dlq: boolean;
}

/**
 * Options of {@link Producer.ensureTopic}.
 *
 * @since 0.1.0
 */
export interface EnsureTopicOptions {
  /** Topic name. @defaultValue the producer's topic */
  name?: string;
  /** Partition count. */
  partitions: number;
  /** Replication factor. @defaultValue 1 */
  replicationFactor?: number;
  /** Topic configs, for example `{ 'cleanup.policy': 'compact' }`. @defaultValue {} */
  configs?: Record<string, string>;
}

/**
 * Lifecycle of a producer.
 *
 * @since 0.1.0
 */
export type ProducerStatus = "opening" | "open" | "closing" | "closed";

/**
 * A partitioned, batching, validating Kafka producer. Made by {@link createProducer}.
 *
 * @since 0.1.0
 */
export interface Producer<T> {
  /** The topic produced to. */
  readonly topic: string;
  /** The dead-letter topic. */
  readonly dlqTopic: string;
  /** `opening` until connected, then `open`; `closing`, `closed` after `close()`. */
  readonly status: ProducerStatus;
  /** Encoded bytes currently buffered or in flight (never above `maxBufferedBytes`, except one oversized event alone). */
  readonly bufferedBytes: number;
  /** Sends waiting for buffer space or topic metadata. */
  readonly waitingSends: number;
  /** Who writes this producer's record batches: `'sluice'` or `'kafkajs'` (see `recordEncoder`). */
  readonly recordEncoder: "sluice" | "kafkajs";
  /**
   * Validates, encodes, partitions and buffers one event.
   *
   * @param event - the event
   * @returns resolves once the broker acknowledged the record (acks=all by default)
   * @throws SchemaError `SCHEMA_INVALID_EVENT` / `SCHEMA_EVENT_TOO_LARGE` in `'reject'` mode;
   *   ProducerError `PRODUCER_CLOSED`, `PRODUCER_TOPIC_NOT_FOUND`, `PRODUCER_DELIVERY_TIMEOUT`, `PRODUCER_SEND_FAILED`
   */
  send(event: T): Promise<SendResult>;
  /**
   * Sends everything buffered now, without waiting for `lingerMs`.
   *
   * @returns resolves once every send made before the call has settled
   * @throws ProducerError `PRODUCER_CLOSED` after close
   */
  flush(): Promise<void>;
  /**
   * Creates a topic when missing. Idempotent.
   *
   * @param options - name, partitions, replication factor, configs
   * @returns whether it was created, and its partition count
   * @throws ProducerError `PRODUCER_TOPIC_MISMATCH` when it exists with another partition count
   */
  ensureTopic(options: EnsureTopicOptions): Promise<{ created: boolean; partitions: number }>;
  /**
   * Drains (waits for every buffered send to settle), then disconnects. Idempotent.
   *
   * @returns resolves when closed
   */
  close(): Promise<void>;
  /** Same as {@link Producer.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

interface Pending {
  topic: string;
  /** The event until it is encoded (then undefined). */
  event: unknown;
  traceparent: string | undefined;
  message: OutgoingMessage | undefined;
  key: Buffer | null;
  size: number;
  dlq: boolean;
  seq: number;
  at: number;
  promise: Promise<SendResult>;
  resolve: (r: SendResult) => void;
  reject: (e: unknown) => void;
}

interface PartitionQueue {
  topic: string;
  partition: number;
  items: Pending[];
  bytes: number;
  firstAt: number;
}

interface InFlight {
  items: Map<PartitionQueue, Pending[]>;
  bytes: number;
  count: number;
  firstAttemptAt: number;
}

const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
const RECORD_OVERHEAD = 70;
const PUMP_CHUNK = 2000;
/**
 * Records per partition per request by default. kafkajs's sendBatch groups
 * records by partition by copying the partition's array for every record
 * (quadratic in records per partition): at 1,500 per partition that grouping
 * costs more than encoding, compressing and sending them.
 */
const DEFAULT_MAX_BATCH_MESSAGES = 200;

function invalidOption(message: string): ProducerError {
  return new ProducerError("PRODUCER_INVALID_OPTIONS", message);
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw invalidOption(`${name} must be a positive integer; got ${JSON.stringify(value)}`);
  }
  return v;
}

function isRetriable(err: unknown): boolean {
  let e = err as { name?: string; retriable?: boolean; originalError?: unknown; cause?: unknown };
  for (let i = 0; i < 5 && e; i++) {
    if (e.name === "KafkaJSNumberOfRetriesExceeded" || e.name === "KafkaJSNonRetriableError") {
      const inner = (e.originalError ?? e.cause) as typeof e | undefined;
      if (!inner) return true;
      e = inner;
      continue;
    }
    break;
  }
  if (!e || typeof e !== "object") return false;
  // Refused credentials do not get better by retrying: fail fast.
  if (e.name === "KafkaJSSASLAuthenticationError") return false;
  if (e.name === "KafkaJSProtocolError") return e.retriable === true;
  return typeof e.name === "string" && e.name.startsWith("KafkaJS");
}

/**
 * Creates a producer for one topic: validates each event with its schema,
 * partitions by key with murmur2 (Java-compatible), accumulates per partition
 * and sends batches on `lingerMs`, `maxBatchMessages` or `maxBatchBytes`, one
 * request at a time, idempotent with acks=all. `send()` resolves when the
 * broker acknowledged that event; memory is bounded by `maxBufferedBytes`.
 *
 * @param options - see {@link ProducerOptions}
 * @returns the producer (connecting in the background)
 * @throws ProducerError `PRODUCER_INVALID_OPTIONS` when an option is invalid
 * @example
 * ```ts
 * const producer = createProducer({ brokers: ['127.0.0.1:9092'], topic: 'events', schema: UserEvent });
 * await producer.ensureTopic({ partitions: 12 });
 * await producer.send({ user_id: 'u1', event_type: 'click', ts: Date.now() });
 * await producer.close();
 * ```
 * @since 0.1.0
 */
export function createProducer<T>(options: ProducerOptions<T>): Producer<T> {
  if (options === null || typeof options !== "object") {
    throw invalidOption("createProducer needs an options object");
  }
  const { topic, schema } = options;
  if (typeof topic !== "string" || topic.length === 0 || !/^[a-zA-Z0-9._-]+$/.test(topic)) {
    throw invalidOption(`topic must be a valid Kafka topic name; got ${JSON.stringify(topic)}`);
  }
  if (!schema || typeof schema.encode !== "function") {
    throw invalidOption("schema must be an EventSchema made by defineSchema() of @sluice/schema");
  }
  const brokers =
    typeof options.brokers === "string"
      ? options.brokers.split(",").map((b) => b.trim())
      : options.brokers
        ? [...options.brokers]
        : undefined;
  if (!options.kafka && (!brokers || brokers.length === 0)) {
    throw invalidOption("give either a kafkajs client (kafka) or a list of brokers");
  }
  const wrap = <R>(fn: () => R): R => {
    try {
      return fn();
    } catch (err) {
      if (SluiceError.isInstance(err) && err.code === "INVALID_DURATION") {
        throw new ProducerError("PRODUCER_INVALID_OPTIONS", err.message, { cause: err });
      }
      throw err;
    }
  };
  const lingerMs = wrap(() => parseDuration(options.lingerMs ?? 5, "lingerMs"));
  const deliveryTimeoutMs = wrap(() =>
    parseDuration(options.deliveryTimeoutMs ?? "2m", "deliveryTimeoutMs"),
  );
  const requestTimeoutMs = wrap(() =>
    parseDuration(options.requestTimeoutMs ?? "30s", "requestTimeoutMs"),
  );
  const maxBatchMessages = positiveInt(
    options.maxBatchMessages,
    "maxBatchMessages",
    DEFAULT_MAX_BATCH_MESSAGES,
  );
  const maxBatchBytes = positiveInt(options.maxBatchBytes, "maxBatchBytes", 512 * 1024);
  const maxBufferedBytes = positiveInt(options.maxBufferedBytes, "maxBufferedBytes", 32 * 2 ** 20);
  const compressionName = options.compression ?? "lz4";
  if (!["none", "gzip", "snappy", "lz4", "zstd"].includes(compressionName)) {
    throw invalidOption(
      `compression must be none, gzip, snappy, lz4 or zstd; got ${JSON.stringify(compressionName)}`,
    );
  }
  const onInvalid = options.onInvalid ?? "reject";
  if (onInvalid !== "reject" && onInvalid !== "dlq") {
    throw invalidOption(`onInvalid must be 'reject' or 'dlq'; got ${JSON.stringify(onInvalid)}`);
  }
  const acks = options.acks ?? "all";
  const idempotent = options.idempotent ?? true;
  if (acks !== "all" && acks !== 1) throw invalidOption("acks must be 'all' or 1");
  if (idempotent && acks !== "all") {
    throw invalidOption(
      "an idempotent producer needs acks 'all'; set idempotent: false for acks 1",
    );
  }
  const framing = options.framing ?? "none";
  if (framing !== "none" && framing !== "confluent") {
    throw invalidOption(`framing must be 'none' or 'confluent'; got ${JSON.stringify(framing)}`);
  }
  const registry = options.registry;
  if (registry !== undefined && typeof registry.register !== "function") {
    throw invalidOption("registry must be a SchemaRegistry from @sluice/schema");
  }
  if (framing === "confluent" && schema.id === undefined && registry === undefined) {
    throw invalidOption(
      "framing 'confluent' needs a registered schema (schema.id); register it with a registry first",
    );
  }
  const dlqTopic = options.dlqTopic ?? `${topic}.dlq`;
  const partitioner = options.partitioner ?? murmur2Partitioner();
  if (typeof partitioner !== "function") throw invalidOption("partitioner must be a function");
  const keyOpt = options.key ?? ("user_id" as keyof T & string);
  const keyOf: (event: T) => Buffer | null =
    typeof keyOpt === "function"
      ? (event) => {
          const k = keyOpt(event);
          return k === null || k === undefined ? null : Buffer.isBuffer(k) ? k : Buffer.from(k);
        }
      : (event) => {
          const k = (event as Record<string, unknown>)?.[keyOpt];
          return k === null || k === undefined ? null : Buffer.from(String(k));
        };
  const timeOpt = options.eventTime ?? ("ts" as keyof T & string);
  const eventTimeOf: (event: T) => number | undefined =
    typeof timeOpt === "function"
      ? timeOpt
      : (event) => {
          const v = (event as Record<string, unknown>)?.[timeOpt];
          if (typeof v === "number" && Number.isFinite(v)) return v;
          if (typeof v === "string") {
            const t = Date.parse(v);
            return Number.isNaN(t) ? undefined : t;
          }
          return undefined;
        };
  const withTrace = options.traceparent ?? true;
  const recordEncoder = options.recordEncoder ?? "auto";
  if (!["auto", "sluice", "kafkajs"].includes(recordEncoder)) {
    throw invalidOption(
      `recordEncoder must be 'auto', 'sluice' or 'kafkajs'; got ${JSON.stringify(recordEncoder)}`,
    );
  }

  registerCompressionCodecs();
  const compression = toKafkaCompression(compressionName);
  const adapter: KafkaAdapter = createKafkaAdapter({
    kafka: options.kafka,
    brokers,
    clientId: options.clientId ?? "sluice-producer",
    acks: acks === "all" ? -1 : 1,
    idempotent,
    requestTimeoutMs,
    recordEncoder,
  });
  if (recordEncoder === "sluice" && adapter.recordEncoder !== "sluice") {
    throw new ProducerError(
      "PRODUCER_ENCODER_UNAVAILABLE",
      `Sluice's record encoder is unavailable: ${adapter.recordEncoderReason}; use recordEncoder 'auto' or 'kafkajs'`,
    );
  }

  let status: ProducerStatus = "opening";
  let closePromise: Promise<void> | undefined;
  let seq = 0;
  let unsettled = 0;
  let bufferedBytes = 0;
  const queues = new Map<string, PartitionQueue>();
  /** The same queues by topic, then partition number (no key string per event). */
  const queueIndex = new Map<string, PartitionQueue[]>();
  let queuedCount = 0;
  let inFlight: InFlight | undefined;
  let lingerTimer: NodeJS.Timeout | undefined;
  const waiting: Pending[] = [];
  let waitingHead = 0;
  const flushWaiters: Array<{ maxSeq: number; remaining: number; resolve: () => void }> = [];
  const partitionCounts = new Map<string, number>();
  const missingUntil = new Map<string, number>();
  let metadataFetch: Promise<void> | undefined;
  let pumpTimer: NodeJS.Timeout | undefined;
  let schemaReady = registry === undefined || schema.id !== undefined;
  let registering: Promise<void> | undefined;
  let registrationError: unknown;

  const closedError = () =>
    new ProducerError(
      "PRODUCER_CLOSED",
      `producer for topic '${topic}' is ${status}; create a new producer to send more`,
      { topic },
    );

  const connecting = adapter.connect().then(
    () => {
      if (status === "opening") status = "open";
    },
    () => {
      // retried by the sender; sends surface the error after deliveryTimeoutMs
    },
  );
  void connecting;

  function settled(p: Pending) {
    unsettled--;
    if (flushWaiters.length === 0) return;
    for (let i = flushWaiters.length - 1; i >= 0; i--) {
      const w = flushWaiters[i]!;
      if (p.seq <= w.maxSeq && --w.remaining === 0) {
        flushWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  function buildMessage(
    event: T,
    value: Buffer,
    key: Buffer | null,
    traceparent: string | undefined,
    extra?: Record<string, string>,
  ): OutgoingMessage {
    const time = eventTimeOf(event) ?? Date.now();
    const timestamp = String(Math.trunc(time));
    const headers: Record<string, string> = {
      [HEADERS.contentType]: JSON_CONTENT_TYPE,
      [HEADERS.eventTime]: Number.isInteger(time) ? timestamp : String(time),
    };
    // kafkajs allocates a buffer per header, so only what a reader needs:
    // the schema id once registered (the subject is then implied).
    if (schema.id !== undefined) headers[HEADERS.schemaId] = String(schema.id);
    if (traceparent) headers[HEADERS.traceparent] = traceparent;
    if (extra) Object.assign(headers, extra);
    return { partition: -1, key, value, headers, timestamp };
  }

  function newPending(event: T): Pending {
    let resolve!: (r: SendResult) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<SendResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    unsettled++;
    return {
      topic,
      event,
      traceparent: withTrace ? activeTraceparent() : undefined,
      message: undefined,
      key: null,
      size: 0,
      dlq: false,
      seq: ++seq,
      at: Date.now(),
      promise,
      resolve,
      reject,
    };
  }

  /** Validates and encodes; false when the send was rejected (invalid event, 'reject' mode). */
  function prepare(p: Pending): boolean {
    const event = p.event as T;
    p.event = undefined;
    let key: Buffer | null;
    try {
      key = keyOf(event);
    } catch {
      key = null;
    }
    p.key = key;
    try {
      let value = schema.encode(event);
      if (framing === "confluent") value = frameConfluent(schema.id!, value);
      p.message = buildMessage(event, value, key, p.traceparent);
    } catch (err) {
      if (!SchemaError.isInstance(err)) {
        failPending(p, err);
        return false;
      }
      const dlq = onInvalid === "dlq";
      if (invalidChannel.hasSubscribers) invalidChannel.publish({ topic, code: err.code, dlq });
      if (!dlq) {
        failPending(p, err);
        return false;
      }
      let raw: string | undefined;
      try {
        raw = JSON.stringify(event);
      } catch {
        raw = undefined;
      }
      p.topic = dlqTopic;
      p.dlq = true;
      p.message = buildMessage(
        event,
        Buffer.from(raw ?? String(event), "utf8"),
        key,
        p.traceparent,
        {
          [HEADERS.errorCode]: err.code,
          [HEADERS.errorMessage]: err.message.slice(0, 1000),
          [HEADERS.errorSource]: topic,
        },
      );
    }
    p.size = p.message.value.byteLength + (key?.byteLength ?? 0) + RECORD_OVERHEAD;
    return true;
  }

  function send(event: T): Promise<SendResult> {
    if (status === "closing" || status === "closed") return Promise.reject(closedError());
    const p = newPending(event);
    if (waitingHead === waiting.length && schemaReady) {
      // Nothing waits ahead of this send: take the fast path when there is room.
      if (!prepare(p)) return p.promise;
      if (tryEnqueue(p)) return p.promise;
    }
    // Later sends wait behind earlier ones (call order = partition order);
    // they are validated and encoded only when their turn comes, so memory
    // held for waiting sends is the caller's events, not encoded copies.
    waiting.push(p);
    schedulePump();
    return p.promise;
  }

  /** Enqueues when metadata is known and there is room; false to wait. */
  function tryEnqueue(p: Pending): boolean {
    const count = partitionCounts.get(p.topic);
    if (count === undefined) return false;
    if (bufferedBytes > 0 && bufferedBytes + p.size > maxBufferedBytes) return false;
    let partition: number;
    try {
      partition = partitioner(p.key, count);
    } catch (cause) {
      failPending(
        p,
        new ProducerError("PRODUCER_PARTITIONER_FAILED", `partitioner threw: ${String(cause)}`, {
          cause,
          topic: p.topic,
        }),
      );
      return true;
    }
    if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
      failPending(
        p,
        new ProducerError(
          "PRODUCER_PARTITIONER_FAILED",
          `partitioner returned ${partition} for topic '${p.topic}' with ${count} partitions`,
          { topic: p.topic },
        ),
      );
      return true;
    }
    const message = p.message!;
    message.partition = partition;
    let byPartition = queueIndex.get(p.topic);
    if (!byPartition) {
      byPartition = [];
      queueIndex.set(p.topic, byPartition);
    }
    let q = byPartition[partition];
    if (!q) {
      q = { topic: p.topic, partition, items: [], bytes: 0, firstAt: 0 };
      byPartition[partition] = q;
      queues.set(`${p.topic}\u0000${partition}`, q);
    }
    if (q.items.length === 0) q.firstAt = Date.now();
    q.items.push(p);
    q.bytes += p.size;
    queuedCount++;
    bufferedBytes += p.size;
    if (!inFlight) {
      if (q.items.length >= maxBatchMessages || q.bytes >= maxBatchBytes || lingerMs === 0) {
        startRequest();
      } else if (!lingerTimer) {
        lingerTimer = setTimeout(onLinger, lingerMs);
      }
    }
    return true;
  }

  function failPending(p: Pending, err: unknown) {
    p.reject(err);
    settled(p);
  }

  let pumpScheduled = false;
  function schedulePump() {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pump();
    });
  }

  /**
   * Admits waiting sends in call order, a bounded chunk per turn of the event
   * loop, so that encoding overlaps with the request in flight.
   */
  function ensureRegistered() {
    if (registering || !registry) return;
    registering = registry
      .register(schema)
      .then(
        () => {
          schemaReady = true;
        },
        (err: unknown) => {
          registrationError = err;
        },
      )
      .finally(() => {
        registering = undefined;
        pump();
      });
  }

  function pump() {
    if (!schemaReady && waitingHead < waiting.length) {
      if (registrationError === undefined) {
        ensureRegistered();
        return;
      }
      // The registry refused or failed: the sends waiting now fail with its
      // error; the next send tries to register again.
      const err = registrationError;
      registrationError = undefined;
      while (waitingHead < waiting.length) failPending(waiting[waitingHead++]!, err);
      waiting.length = 0;
      waitingHead = 0;
      return;
    }
    let budget = PUMP_CHUNK;
    while (waitingHead < waiting.length) {
      const p = waiting[waitingHead]!;
      if (p.message === undefined) {
        if (budget-- <= 0) {
          schedulePump();
          break;
        }
        if (!prepare(p)) {
          waitingHead++;
          continue;
        }
      }
      if (!partitionCounts.has(p.topic)) {
        const until = missingUntil.get(p.topic);
        if (until !== undefined && until > Date.now()) {
          waitingHead++;
          failPending(
            p,
            new ProducerError(
              "PRODUCER_TOPIC_NOT_FOUND",
              `topic '${p.topic}' does not exist; create it (producer.ensureTopic) — auto-creation is off`,
              { topic: p.topic, retryable: true },
            ),
          );
          continue;
        }
        if (Date.now() - p.at > deliveryTimeoutMs) {
          waitingHead++;
          failPending(p, timeoutError(p.topic));
          continue;
        }
        fetchMetadata(p.topic);
        break;
      }
      if (!tryEnqueue(p)) break;
      waitingHead++;
    }
    if (waitingHead === waiting.length) {
      waiting.length = 0;
      waitingHead = 0;
    } else if (waitingHead > 4096 && waitingHead * 2 > waiting.length) {
      waiting.splice(0, waitingHead);
      waitingHead = 0;
    }
    if (waitingHead < waiting.length && !inFlight && queuedCount > 0) startRequest();
  }

  function timeoutError(t: string) {
    return new ProducerError(
      "PRODUCER_DELIVERY_TIMEOUT",
      `not acknowledged by Kafka within deliveryTimeoutMs ${deliveryTimeoutMs} (topic '${t}'); is the broker reachable?`,
      { topic: t, retryable: true },
    );
  }

  function fetchMetadata(t: string) {
    if (metadataFetch) return;
    metadataFetch = adapter
      .partitionCount(t)
      .then(
        (count) => {
          if (count === undefined || count === 0) missingUntil.set(t, Date.now() + 1000);
          else {
            partitionCounts.set(t, count);
            missingUntil.delete(t);
          }
        },
        (err: unknown) => {
          if (!isRetriable(err)) {
            // e.g. Kafka refused the credentials: fail the waiting sends now.
            const e = new ProducerError(
              "PRODUCER_SEND_FAILED",
              `Kafka refused the producer: ${(err as Error)?.message ?? String(err)}`,
              { cause: err, topic: t },
            );
            while (waitingHead < waiting.length) failPending(waiting[waitingHead++]!, e);
            return;
          }
          // broker unreachable: retry shortly
          if (!pumpTimer) {
            pumpTimer = setTimeout(() => {
              pumpTimer = undefined;
              pump();
            }, 200);
          }
        },
      )
      .finally(() => {
        metadataFetch = undefined;
        if (!pumpTimer) pump();
      });
  }

  function onLinger() {
    lingerTimer = undefined;
    if (!inFlight && queuedCount > 0) startRequest();
  }

  function startRequest() {
    if (lingerTimer) {
      clearTimeout(lingerTimer);
      lingerTimer = undefined;
    }
    const req: InFlight = { items: new Map(), bytes: 0, count: 0, firstAttemptAt: Date.now() };
    for (const q of queues.values()) {
      if (q.items.length === 0) continue;
      if (req.bytes >= MAX_REQUEST_BYTES) break;
      let n = 0;
      let bytes = 0;
      while (n < q.items.length && n < maxBatchMessages) {
        const s = q.items[n]!.size;
        if (n > 0 && bytes + s > maxBatchBytes) break;
        bytes += s;
        n++;
      }
      const taken = n === q.items.length ? q.items : q.items.slice(0, n);
      q.items = n === q.items.length ? [] : q.items.slice(n);
      q.bytes -= bytes;
      q.firstAt = Date.now();
      queuedCount -= n;
      req.items.set(q, taken);
      req.bytes += bytes;
      req.count += n;
    }
    if (req.count === 0) return;
    inFlight = req;
    void runRequest(req);
  }

  async function runRequest(req: InFlight) {
    const byTopic = new Map<string, TopicBatch>();
    for (const [q, items] of req.items) {
      let tb = byTopic.get(q.topic);
      if (!tb) {
        tb = { topic: q.topic, messages: [] };
        byTopic.set(q.topic, tb);
      }
      for (const p of items) tb.messages.push(p.message!);
    }
    const batches = [...byTopic.values()];
    let attempt = 0;
    let outcome: { ok: true; offsets: Map<string, number> } | { ok: false; error: unknown };
    for (;;) {
      const started = performance.now();
      try {
        await adapter.connect();
        const acks = await adapter.send(batches, compression);
        if (status === "opening") status = "open";
        const offsets = new Map<string, number>();
        for (const a of acks) offsets.set(`${a.topic}\u0000${a.partition}`, Number(a.baseOffset));
        publishBatches(req, performance.now() - started);
        outcome = { ok: true, offsets };
        break;
      } catch (err) {
        publishBatches(req, performance.now() - started, err);
        if (!isRetriable(err)) {
          outcome = {
            ok: false,
            error: new ProducerError(
              "PRODUCER_SEND_FAILED",
              `Kafka refused the batch: ${(err as Error)?.message ?? String(err)}`,
              { cause: err, topic },
            ),
          };
          break;
        }
        if (Date.now() - req.firstAttemptAt >= deliveryTimeoutMs) {
          const e = timeoutError(topic);
          (e as { cause?: unknown }).cause = err;
          outcome = { ok: false, error: e };
          break;
        }
        // Retry the identical request: same partitions, same records, so the
        // idempotent producer's sequence numbers match and the broker drops
        // any copy it already wrote.
        const delay = Math.min(1000, 100 * 2 ** attempt++);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    for (const [q, items] of req.items) {
      const base = outcome.ok ? outcome.offsets.get(`${q.topic}\u0000${q.partition}`) : undefined;
      for (let i = 0; i < items.length; i++) {
        const p = items[i]!;
        if (outcome.ok) {
          p.resolve({
            topic: q.topic,
            partition: q.partition,
            offset: base === undefined || base < 0 ? "-1" : String(base + i),
            dlq: p.dlq,
          });
        } else {
          p.reject(outcome.error);
        }
        // after resolving, so that flush() resolves after the sends it waits for
        settled(p);
      }
    }
    bufferedBytes -= req.bytes;
    inFlight = undefined;
    pump();
    if (!inFlight && queuedCount > 0) {
      let oldest = Number.POSITIVE_INFINITY;
      let full = false;
      for (const q of queues.values()) {
        if (q.items.length === 0) continue;
        oldest = Math.min(oldest, q.firstAt);
        if (q.items.length >= maxBatchMessages || q.bytes >= maxBatchBytes) full = true;
      }
      const force = full || flushWaiters.length > 0 || waitingHead < waiting.length;
      const due = oldest + lingerMs - Date.now();
      if (force || due <= 0) startRequest();
      else if (!lingerTimer) lingerTimer = setTimeout(onLinger, due);
    }
  }

  function publishBatches(req: InFlight, durationMs: number, error?: unknown) {
    if (!batchChannel.hasSubscribers) return;
    const perTopic = new Map<string, BatchMessage>();
    for (const [q, items] of req.items) {
      let m = perTopic.get(q.topic);
      if (!m) {
        m = { topic: q.topic, messages: 0, bytes: 0, durationMs };
        if (error !== undefined) m.error = (error as Error)?.name ?? "Error";
        perTopic.set(q.topic, m);
      }
      m.messages += items.length;
      for (const p of items) m.bytes += p.size;
    }
    for (const m of perTopic.values()) batchChannel.publish(m);
  }

  function flushAll(): Promise<void> {
    if (unsettled === 0) return Promise.resolve();
    const done = new Promise<void>((resolve) => {
      flushWaiters.push({ maxSeq: seq, remaining: unsettled, resolve });
    });
    if (!inFlight && queuedCount > 0) startRequest();
    return done;
  }

  const producer: Producer<T> = {
    topic,
    dlqTopic,
    get status() {
      return status;
    },
    get bufferedBytes() {
      return bufferedBytes;
    },
    get waitingSends() {
      return waiting.length - waitingHead;
    },
    recordEncoder: adapter.recordEncoder,
    send,
    flush() {
      if (status === "closing" || status === "closed") return Promise.reject(closedError());
      return flushAll();
    },
    async ensureTopic(opts) {
      if (status === "closing" || status === "closed") throw closedError();
      const name = opts?.name ?? topic;
      const partitions = opts?.partitions;
      if (!Number.isInteger(partitions) || (partitions as number) <= 0) {
        throw invalidOption(`ensureTopic needs partitions > 0; got ${JSON.stringify(partitions)}`);
      }
      const replicationFactor = opts.replicationFactor ?? 1;
      if (!Number.isInteger(replicationFactor) || replicationFactor <= 0) {
        throw invalidOption(
          `replicationFactor must be a positive integer; got ${replicationFactor}`,
        );
      }
      let result: { created: boolean; partitions: number };
      try {
        result = await adapter.createTopic({
          name,
          partitions,
          replicationFactor,
          configs: opts.configs ?? {},
        });
      } catch (cause) {
        throw new ProducerError(
          "PRODUCER_SEND_FAILED",
          `could not create topic '${name}': ${(cause as Error)?.message ?? String(cause)}`,
          { cause, topic: name, retryable: isRetriable(cause) },
        );
      }
      if (result.partitions !== partitions) {
        throw new ProducerError(
          "PRODUCER_TOPIC_MISMATCH",
          `topic '${name}' exists with ${result.partitions} partitions, not ${partitions}; use ${result.partitions} or another topic (Sluice never repartitions a topic: keys would move)`,
          { topic: name },
        );
      }
      partitionCounts.set(name, result.partitions);
      missingUntil.delete(name);
      return result;
    },
    close() {
      if (!closePromise) {
        status = "closing";
        closePromise = (async () => {
          // Waiting sends go on being admitted as room frees; wait for all.
          while (unsettled > 0) await flushAll();
          if (lingerTimer) clearTimeout(lingerTimer);
          if (pumpTimer) clearTimeout(pumpTimer);
          await adapter.disconnect();
          status = "closed";
        })();
      }
      return closePromise;
    },
    [Symbol.asyncDispose]() {
      return producer.close();
    },
  };
  return producer;
}
