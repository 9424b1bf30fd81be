// Sluice's own record-batch encoding, fed through kafkajs's producer.
//
// kafkajs 2.2.4 encodes every record and every header with a fresh Encoder
// (a zeroed 512-byte buffer each); for Sluice's records that costs more than
// validation, JSON and the network together. This module keeps kafkajs's
// producer whole (metadata, retries, idempotent producer id and sequence
// numbers, response parsing) and swaps only the `encode` step of the Produce
// requests that *this* producer sends, for `encodeProduceRequest`, which
// writes the same bytes.
//
// Scope: the swap is made on the private cluster kafkajs creates for this
// one producer (reached through `kafka.producer` called on a prototype
// child of the client) and on the broker objects of that cluster only.
// Nothing shared is touched: not the client passed in, not kafkajs's
// modules or prototypes, so other kafkajs producers in the process encode
// as before (kafkajs-private-cluster.ts). It is pinned to one kafkajs version; on any other
// version, or a client from another kafkajs copy, kafkajs encodes as usual.
//
// Transactional producers also cache their coordinator lookups on the same
// private cluster (coordinator-cache.ts), whoever encodes their records.
import kafkajs, { type Kafka, type Producer, type ProducerConfig } from "kafkajs";
import {
  type CoordinatorLookups,
  cacheCoordinators,
  coordinatorCacheUsable,
} from "./coordinator-cache.js";
import {
  fenceOffsetCommits,
  type GroupGeneration,
  groupFencingInternals,
} from "./group-generation.js";
import { expandProduceArgs, SequenceTranslator } from "./grouped-records.js";
import { onPrivateCluster, pinnedKafkajsCheck, symbolNamed } from "./kafkajs-private-cluster.js";
import { type CodecLike, encodeProduceRequest, type ProduceArgs } from "./record-batch.js";

const { Kafka: KafkaClass, CompressionCodecs } = kafkajs;

const PRODUCE_API_KEY = 0;
/** Produce versions kafkajs 2.2.4 may pick whose body layout we write. */
const MIN_VERSION = 3;
const MAX_VERSION = 7;

interface ProduceDefinition {
  versions: string[];
  protocol: (o: { version: number }) => unknown;
}

interface Internals {
  produce: ProduceDefinition;
}

type BrokerLike = {
  produce: (args: ProduceArgs) => Promise<unknown>;
  lookupRequest?: (apiKey: number, def: ProduceDefinition) => (args: unknown) => unknown;
} & Record<symbol, unknown>;

/**
 * kafkajs's internals this path needs, or the reason they are not usable.
 * Loaded once, lazily; never throws.
 */
export const kafkajsInternals = pinnedKafkajsCheck<Internals>(
  "Sluice's record encoder",
  (require) => {
    const produce = require("kafkajs/src/protocol/requests/produce/index.js") as ProduceDefinition;
    const Broker = require("kafkajs/src/broker/index.js") as { prototype: object };
    const versions = produce?.versions?.map(Number) ?? [];
    if (typeof produce?.protocol !== "function" || Math.max(...versions) !== MAX_VERSION) {
      return "kafkajs's Produce request module has an unexpected shape";
    }
    if (
      !sendRequestSymbol(Broker.prototype) ||
      typeof (Broker.prototype as BrokerLike).produce !== "function"
    ) {
      return "kafkajs's Broker has an unexpected shape";
    }
    return { produce };
  },
);

function sendRequestSymbol(proto: object): symbol | undefined {
  return symbolNamed(proto, "private:Broker:sendRequest");
}

function lookupCodec(type: number): CodecLike | undefined {
  const factory = (CompressionCodecs as Record<number, (() => CodecLike) | undefined>)[type];
  return factory ? factory() : undefined;
}

/** What {@link createEncodingProducer} made. */
export interface EncodingProducer {
  producer: Producer;
  /** Who encodes the records: `'sluice'` (this module) or `'kafkajs'`. */
  encoder: "sluice" | "kafkajs";
  /** Why kafkajs encodes, when it does. */
  reason: string | undefined;
  /** Produce requests encoded by Sluice, and handed back to kafkajs. */
  readonly counts: { sluice: number; kafkajs: number };
  /**
   * True when the producer takes one `PartitionRecords` per partition (see
   * `grouped-records.ts`) in place of its records; only with Sluice's encoder
   * and when asked for.
   */
  groupsRecords: boolean;
  /**
   * Coordinator lookups sent and answered from the cache, when the producer
   * caches them (transactional producers, kafkajs's internals usable).
   */
  coordinatorLookups: Readonly<CoordinatorLookups> | undefined;
  /**
   * The group generations the producer's TxnOffsetCommit requests are fenced
   * with, by group id, when it can fence them (transactional producers,
   * kafkajs's internals usable); see group-generation.ts.
   */
  groupGenerations: Map<string, GroupGeneration> | undefined;
}

/**
 * A kafkajs producer whose Produce requests Sluice encodes when it can, and
 * which caches its coordinator lookups when it is transactional.
 *
 * @param kafka - the client
 * @param config - kafkajs producer config
 * @param mode - `'kafkajs'` to opt out
 * @param grouped - let the producer take one `PartitionRecords` per partition
 *   (its partitioner must return the `partition` of the message it is given)
 */
export function createEncodingProducer(
  kafka: Kafka,
  config: ProducerConfig,
  mode: "auto" | "sluice" | "kafkajs",
  grouped = false,
): EncodingProducer {
  const counts = { sluice: 0, kafkajs: 0 };
  const plain = (reason: string, made?: Producer): EncodingProducer => ({
    producer: made ?? kafka.producer(config),
    encoder: "kafkajs",
    reason,
    counts,
    groupsRecords: false,
    coordinatorLookups: undefined,
    groupGenerations: undefined,
  });
  const internals = mode === "kafkajs" ? "recordEncoder is 'kafkajs'" : kafkajsInternals();
  // The cache is independent of the encoder: kafkajs looks the coordinator up
  // before every transactional request, whoever writes the records.
  const caching = Boolean(config.transactionalId) && coordinatorCacheUsable() === true;
  // So is fencing offset commits by the group's generation.
  const fencing = Boolean(config.transactionalId) && typeof groupFencingInternals() !== "string";
  if (typeof internals === "string" && !caching && !fencing) return plain(internals);
  const groupGenerations = fencing ? new Map<string, GroupGeneration>() : undefined;
  // With grouped records kafkajs counts one sequence number per partition
  // per request; every Produce request of this producer is translated.
  const sequences = grouped ? new SequenceTranslator() : undefined;
  const install = (broker: BrokerLike, found: Internals) => {
    const send = sendRequestSymbol(Object.getPrototypeOf(broker) as object);
    const original = broker.produce;
    if (!send || typeof original !== "function") return;
    broker.produce = async function produce(this: BrokerLike, fromKafkajs: ProduceArgs) {
      // Synchronously, in the order kafkajs hands out sequence numbers.
      const given = expandProduceArgs(fromKafkajs, sequences);
      const args: ProduceArgs = {
        ...given,
        acks: given.acks ?? -1,
        timeout: given.timeout ?? 30000,
        compression: given.compression ?? 0,
      };
      const build = this.lookupRequest?.(PRODUCE_API_KEY, found.produce);
      const protocolRequest = build?.(args) as
        | { request?: { apiVersion?: number; encode?: () => Promise<unknown> } }
        | undefined;
      const request = protocolRequest?.request;
      const version = request?.apiVersion ?? -1;
      if (
        !request ||
        typeof request.encode !== "function" ||
        version < MIN_VERSION ||
        version > MAX_VERSION
      ) {
        counts.kafkajs++;
        return original.call(this, given);
      }
      const kafkajsEncode = request.encode;
      request.encode = async () => {
        const body = await encodeProduceRequest(args, lookupCodec);
        if (body === undefined) {
          counts.kafkajs++;
          return kafkajsEncode();
        }
        counts.sluice++;
        // what kafkajs's request framing reads from an Encoder
        return { buf: body, buffer: body, offset: body.length, size: () => body.length };
      };
      return (this[send] as (r: unknown) => Promise<unknown>).call(this, protocolRequest);
    };
  };
  let cache: ReturnType<typeof cacheCoordinators> | undefined;
  const hooked = onPrivateCluster(
    kafka,
    (child) => KafkaClass.prototype.producer.call(child, config),
    (broker) => {
      // the encoder's Produce first: the cache's hook wraps it
      if (typeof internals !== "string") install(broker as BrokerLike, internals);
      // inside the cache's hooks, so its resend of a commit is fenced too
      if (groupGenerations) {
        fenceOffsetCommits(broker, (groupId) => groupGenerations.get(groupId));
      }
      if (typeof cache === "object") cache.onBroker(broker);
    },
  );
  if (hooked.reason !== undefined) {
    return plain(typeof internals === "string" ? internals : hooked.reason, hooked.made);
  }
  // set before the producer connects, so before any broker is handed out
  if (caching) cache = cacheCoordinators(hooked.cluster);
  const coordinatorLookups = typeof cache === "object" ? cache.lookups : undefined;
  if (typeof internals === "string") {
    return { ...plain(internals, hooked.made), coordinatorLookups, groupGenerations };
  }
  return {
    producer: hooked.made,
    encoder: "sluice",
    reason: undefined,
    counts,
    groupsRecords: grouped,
    coordinatorLookups,
    groupGenerations,
  };
}
