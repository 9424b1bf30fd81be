// Cached coordinator lookups for one transactional kafkajs producer.
//
// kafkajs 2.2.4 sends a FindCoordinator request before every transactional
// request (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, and
// for the consumer group's coordinator before TxnOffsetCommit) and keeps no
// answer. This module keeps the answers on one producer's private cluster
// (kafkajs-private-cluster.ts), per coordinator type and key, and replaces
// only the round trip: kafkajs's `findGroupCoordinator` still runs whole and
// still turns the answer's node id into a broker with the cluster's own
// `findBroker`, so connecting, retrying and refreshing metadata stay kafkajs's.
//
// Dropping. A cached answer goes stale when the coordinator moves (its
// partition of `__transaction_state` or `__consumer_offsets` gets a new
// leader) or its broker goes away. Every answer of the cluster is dropped as
// soon as anything hints at that:
// - a request of the transactional path, or a Produce, rejects on any broker
//   of the cluster (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, connection
//   errors, timeouts, anything), except with the two errors only the
//   coordinator itself gives: CONCURRENT_TRANSACTIONS and
//   COORDINATOR_LOAD_IN_PROGRESS;
// - the cluster's `findBroker` rejects (the node is gone or unreachable);
// - the cluster disconnects.
// kafkajs's own retries (InitProducerId's, Produce's, findGroupCoordinator's)
// then look the coordinator up again.
//
// Sending again. kafkajs does not retry EndTxn or AddOffsetsToTxn, and its
// TxnOffsetCommit retrier looks for the coordinator errors under names
// kafkajs 2.2.4 does not give them; a failed EndTxn also leaves kafkajs's
// transaction state at COMMITTING or ABORTING for good, so the producer can
// begin no other transaction. Looking the coordinator up just before, kafkajs
// rarely sends those to a coordinator that moved; with a cached answer it
// would, whenever the coordinator moved since. So these three requests, when
// refused as not (or no longer) the coordinator's, or lost to a connection
// error or a timeout, are sent once more with the same arguments to the
// coordinator a fresh lookup finds, as the Java client does; Kafka answers a
// repeated EndTxn, AddOffsetsToTxn or TxnOffsetCommit as it did the first.
// InitProducerId is left to kafkajs's retrier, which handles these errors.
//
// CONCURRENT_TRANSACTIONS. The coordinator refuses to add partitions or
// offsets to a transaction while it is still completing the previous one
// (writing its markers), a few milliseconds after EndTxn answered. Without
// the lookups, the next transaction's first request reaches it sooner and
// meets that refusal far more often, and kafkajs retries it only after its
// retry delay (300 ms by default): measured on the local broker, twelve
// transactions in a row took seconds instead of tens of milliseconds. So
// AddPartitionsToTxn and AddOffsetsToTxn refused that way are sent again
// after 2 ms, then 4, 8, ... (at most 10 times, 0.3 s), before the error
// reaches kafkajs.

import { pinnedKafkajsCheck } from "./kafkajs-private-cluster.js";

/** kafkajs's `COORDINATOR_TYPES`. */
const GROUP = 0;
const TRANSACTION = 1;

/** kafkajs 2.2.4's types of error codes 15 and 16 (the pinned check verifies them). */
const STALE_COORDINATOR_ERRORS: ReadonlyMap<number, string> = new Map([
  [15, "GROUP_COORDINATOR_NOT_AVAILABLE"],
  [16, "NOT_COORDINATOR_FOR_GROUP"],
]);
/** Errors after which a request may not have reached a coordinator. */
const LOST_REQUEST_ERRORS = [
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
];

/** kafkajs 2.2.4's types of error codes 14 and 51: answers only the coordinator gives. */
const COORDINATOR_ERRORS: ReadonlyMap<number, string> = new Map([
  [14, "GROUP_LOAD_IN_PROGRESS"],
  [51, "CONCURRENT_TRANSACTIONS"],
]);
const KEEPING = new Set(COORDINATOR_ERRORS.values());
const SENT_AGAIN = new Set([...STALE_COORDINATOR_ERRORS.values(), ...LOST_REQUEST_ERRORS]);

/** Requests of the transactional path whose rejection drops the cache. */
const DROPPING_REQUESTS = [
  "initProducerId",
  "addPartitionsToTxn",
  "addOffsetsToTxn",
  "endTxn",
  "txnOffsetCommit",
  "produce",
] as const;

/**
 * Requests sent once more to a freshly found coordinator (see the top of this
 * file), and the coordinator each one goes to.
 */
const SENT_ONCE_MORE: Readonly<Record<string, (args: RequestArgs) => Lookup | undefined>> = {
  endTxn: (a) => transactionLookup(a.transactionalId),
  addOffsetsToTxn: (a) => transactionLookup(a.transactionalId),
  txnOffsetCommit: (a) =>
    typeof a.groupId === "string" ? { groupId: a.groupId, coordinatorType: GROUP } : undefined,
};

/** Requests refused while the previous transaction completes, sent again soon. */
const OPENING_REQUESTS = new Set(["addPartitionsToTxn", "addOffsetsToTxn"]);
const CONCURRENT_FIRST_DELAY_MS = 2;
const CONCURRENT_MAX_DELAY_MS = 64;
const CONCURRENT_ATTEMPTS = 10;

function transactionLookup(transactionalId: unknown): Lookup | undefined {
  return typeof transactionalId === "string"
    ? { groupId: transactionalId, coordinatorType: TRANSACTION }
    : undefined;
}

/** kafkajs's argument to `findGroupCoordinator` and `findGroupCoordinatorMetadata`. */
interface Lookup {
  groupId: string;
  coordinatorType?: number;
}

interface RequestArgs {
  transactionalId?: unknown;
  groupId?: unknown;
}

type Method = (this: unknown, ...args: never[]) => Promise<unknown>;

/** What the cache needs of a kafkajs cluster (`kafkajs/src/cluster/index.js`). */
interface ClusterLike {
  findGroupCoordinatorMetadata: (query: Lookup) => Promise<unknown>;
  findGroupCoordinator: (query: Lookup) => Promise<unknown>;
  findBroker: (query: { nodeId: unknown }) => Promise<unknown>;
  disconnect: () => Promise<unknown>;
}

const CLUSTER_METHODS = [
  "findGroupCoordinatorMetadata",
  "findGroupCoordinator",
  "findBroker",
  "disconnect",
] as const;

/**
 * kafkajs's internals the cache relies on: `true`, or why they are unusable.
 * Loaded once, lazily; never throws.
 */
export const coordinatorCacheUsable = pinnedKafkajsCheck<true>(
  "Sluice's coordinator cache",
  (require) => {
    const Cluster = require("kafkajs/src/cluster/index.js") as { prototype: object };
    const Broker = require("kafkajs/src/broker/index.js") as { prototype: object };
    const { errorCodes } = require("kafkajs/src/protocol/error.js") as {
      errorCodes: { code: number; type: string }[];
    };
    const errors = require("kafkajs/src/errors.js") as Record<string, unknown>;
    const types = require("kafkajs/src/protocol/coordinatorTypes.js") as Record<string, number>;
    const cluster = Cluster.prototype as Record<string, unknown>;
    const broker = Broker.prototype as Record<string, unknown>;
    if (CLUSTER_METHODS.some((m) => typeof cluster[m] !== "function")) {
      return "kafkajs's Cluster has an unexpected shape";
    }
    if (DROPPING_REQUESTS.some((m) => typeof broker[m] !== "function")) {
      return "kafkajs's Broker has an unexpected shape";
    }
    for (const [code, type] of [...STALE_COORDINATOR_ERRORS, ...COORDINATOR_ERRORS]) {
      if (errorCodes.find((e) => e.code === code)?.type !== type) {
        return "kafkajs's protocol errors have an unexpected shape";
      }
    }
    if (LOST_REQUEST_ERRORS.some((name) => typeof errors[name] !== "function")) {
      return "kafkajs's errors have an unexpected shape";
    }
    if (types.GROUP !== GROUP || types.TRANSACTION !== TRANSACTION) {
      return "kafkajs's coordinator types have an unexpected shape";
    }
    return true;
  },
);

/**
 * Coordinator lookups of a producer: sent to a broker, or answered without
 * one (from the cache, or by a lookup of the same coordinator in flight).
 */
export interface CoordinatorLookups {
  sent: number;
  cached: number;
}

/** What {@link cacheCoordinators} installed on a cluster. */
export interface CoordinatorCache {
  readonly lookups: Readonly<CoordinatorLookups>;
  /** Hooks one broker object of the cluster; call it once per broker, before use. */
  onBroker(broker: object): void;
}

/**
 * Caches `findGroupCoordinatorMetadata` answers on one kafkajs cluster, per
 * coordinator type and key, and hooks the cluster's broker objects as
 * described at the top of this file. Only instance properties of `cluster`
 * and of the broker objects handed to `onBroker` are set; nothing shared is
 * touched.
 *
 * @param cluster - one producer's private kafkajs cluster
 * @returns the cache, or why the cluster cannot have one
 */
export function cacheCoordinators(cluster: object): CoordinatorCache | string {
  const c = cluster as ClusterLike;
  if (CLUSTER_METHODS.some((m) => typeof c[m] !== "function")) {
    return "kafkajs's cluster has an unexpected shape";
  }
  const lookups: CoordinatorLookups = { sent: 0, cached: 0 };
  const answers = new Map<string, Promise<unknown>>();
  const drop = () => answers.clear();

  const findMetadata = c.findGroupCoordinatorMetadata;
  c.findGroupCoordinatorMetadata = function (this: unknown, query: Lookup) {
    const key = `${query?.coordinatorType ?? GROUP}:${query?.groupId}`;
    const known = answers.get(key);
    if (known) {
      lookups.cached++;
      return known;
    }
    lookups.sent++;
    const answer = findMetadata.call(this, query);
    answers.set(key, answer);
    // a failed lookup is not kept (a drop since may have replaced it)
    answer.catch(() => {
      if (answers.get(key) === answer) answers.delete(key);
    });
    return answer;
  };
  c.findBroker = dropping(c.findBroker, drop);
  const disconnect = c.disconnect;
  c.disconnect = function (this: unknown) {
    drop();
    return disconnect.call(this);
  };

  // the arguments of the requests being sent once more, so they are not again
  const resent = new WeakSet<object>();
  const sentOnceMore = (request: Method, name: string): Method => {
    const coordinatorOf = SENT_ONCE_MORE[name];
    if (!coordinatorOf) return request;
    return async function (this: unknown, args: RequestArgs) {
      try {
        return await (request as (a: RequestArgs) => Promise<unknown>).call(this, args);
      } catch (err) {
        const lookup = coordinatorOf(args ?? {});
        if (!lookup || !SENT_AGAIN.has(errorKind(err)) || resent.has(args)) throw err;
        resent.add(args);
        try {
          const fresh = (await c.findGroupCoordinator(lookup).catch(() => {
            throw err;
          })) as Record<string, (a: RequestArgs) => Promise<unknown>>;
          return await fresh[name]!(args);
        } finally {
          resent.delete(args);
        }
      }
    } as Method;
  };
  const onBroker = (broker: object) => {
    const b = broker as Record<string, unknown>;
    for (const name of DROPPING_REQUESTS) {
      const original = b[name];
      if (typeof original !== "function") continue;
      const request = sentOnceMore(dropping(original as Method, drop), name);
      b[name] = OPENING_REQUESTS.has(name) ? retryingConcurrent(request) : request;
    }
  };
  return { lookups, onBroker };
}

/** `request`, calling `drop` when it rejects with an error that does not come from the coordinator. */
function dropping<F extends Method>(request: F, drop: () => void): F {
  return async function (this: unknown, ...args: never[]) {
    try {
      return await request.apply(this, args);
    } catch (err) {
      if (!KEEPING.has(errorKind(err))) drop();
      throw err;
    }
  } as F;
}

/** `request`, sent again a few times, soon, while refused with CONCURRENT_TRANSACTIONS. */
function retryingConcurrent(request: Method): Method {
  return async function (this: unknown, ...args: never[]) {
    let delay = CONCURRENT_FIRST_DELAY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await request.apply(this, args);
      } catch (err) {
        if (errorKind(err) !== "CONCURRENT_TRANSACTIONS" || attempt >= CONCURRENT_ATTEMPTS) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, CONCURRENT_MAX_DELAY_MS);
      }
    }
  };
}

/** A kafkajs protocol error's type (`NOT_COORDINATOR_FOR_GROUP`), or else the error's name. */
function errorKind(err: unknown): string {
  const e = err as { type?: unknown; name?: unknown } | null;
  if (typeof e?.type === "string") return e.type;
  return typeof e?.name === "string" ? e.name : "";
}
