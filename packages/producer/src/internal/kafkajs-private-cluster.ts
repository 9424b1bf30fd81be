// kafkajs's private cluster, for hooks that must touch nothing shared.
//
// Sluice swaps a step of kafkajs's broker requests (the Produce encoding
// here, the read_committed fetch filter in @sluice/windowing) for one
// producer or consumer only. kafkajs creates a private cluster for every
// producer and consumer through a symbol-keyed method of its client; calling
// `kafka.producer` / `kafka.consumer` on a prototype child of the client that
// overrides that method hands us the new cluster, and wrapping that
// cluster's `findBroker` reaches each of its broker objects. The client
// passed in, kafkajs's modules and prototypes, and every other producer or
// consumer are left as they were. It relies on kafkajs's internals, so it is
// pinned to one kafkajs version, checked once.
//
// Exported from @sluice/producer for the other Sluice packages only.
import { createRequire } from "node:module";
import kafkajs, { type Kafka } from "kafkajs";

const { Kafka: KafkaClass } = kafkajs;

/**
 * The kafkajs version whose internals Sluice's hooks were checked against.
 *
 * @internal
 */
export const PINNED_KAFKAJS_VERSION = "2.2.4";

/**
 * A check of kafkajs's internals, made once, lazily, at the first call: the
 * installed kafkajs must be {@link PINNED_KAFKAJS_VERSION}, then `check` runs
 * with a `require` that loads kafkajs's own modules. The returned function
 * never throws.
 *
 * @param what - what is pinned, for the reason (`"Sluice's record encoder"`)
 * @param check - what the caller needs from kafkajs, or why it is unusable
 * @returns a function answering `check`'s result or the reason it failed
 * @internal
 */
export function pinnedKafkajsCheck<T>(
  what: string,
  check: (require: NodeJS.Require) => T | string,
): () => T | string {
  let result: { value: T | string } | undefined;
  return () => {
    if (result) return result.value;
    let value: T | string;
    try {
      const require = createRequire(import.meta.url);
      const pkg = require("kafkajs/package.json") as { version?: string };
      value =
        pkg.version === PINNED_KAFKAJS_VERSION
          ? check(require)
          : `kafkajs ${pkg.version} is installed; ${what} is pinned to ${PINNED_KAFKAJS_VERSION}`;
    } catch (err) {
      value = `kafkajs internals could not be loaded: ${(err as Error)?.message ?? String(err)}`;
    }
    result = { value };
    return value;
  };
}

/**
 * The symbol-keyed property of `obj` whose description is `description`
 * (kafkajs's private methods, e.g. `private:Broker:sendRequest`).
 *
 * @internal
 */
export function symbolNamed(obj: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(obj).find((s) => s.description === description);
}

/**
 * What {@link onPrivateCluster} made and the private cluster it hooked, or why
 * the hook is not installed (`made` is then what to use instead, when it
 * could be made).
 *
 * @internal
 */
export type PrivateClusterResult<R> =
  | { made: R; cluster: object; reason?: undefined }
  | { made: R | undefined; cluster?: undefined; reason: string };

/**
 * Makes a kafkajs producer or consumer whose private cluster calls
 * `onBroker` once for every broker object it hands out.
 *
 * @param kafka - the client (left unchanged)
 * @param make - makes the producer or consumer from the child client given,
 *   e.g. `(c) => Kafka.prototype.consumer.call(c, config)`
 * @param onBroker - called once per broker object of that cluster, before use
 * @returns what `make` made and its private cluster (for hooks of the
 *   cluster's own, set before the first use); `reason` when the hook is not
 *   installed
 * @internal
 */
export function onPrivateCluster<R>(
  kafka: Kafka,
  make: (child: Kafka) => R,
  onBroker: (broker: object) => void,
): PrivateClusterResult<R> {
  if (!(kafka instanceof KafkaClass)) {
    return { made: undefined, reason: "the kafka client comes from another copy of kafkajs" };
  }
  const createCluster = symbolNamed(kafka, "private:Kafka:createCluster");
  const create = createCluster
    ? (kafka as unknown as Record<symbol, unknown>)[createCluster]
    : undefined;
  if (!createCluster || typeof create !== "function") {
    return { made: undefined, reason: "kafkajs's client has an unexpected shape" };
  }
  type ClusterLike = { findBroker?: (q: { nodeId: string }) => Promise<object> };
  let cluster: ClusterLike | undefined;
  // A child of the client whose cluster factory hands us the new cluster;
  // the client itself is left as it was.
  const child = Object.create(kafka) as Kafka;
  Object.defineProperty(child, createCluster, {
    value: (options: unknown) => {
      cluster = (create as (o: unknown) => ClusterLike)(options);
      return cluster;
    },
  });
  const made = make(child);
  const findBroker = cluster?.findBroker;
  if (!cluster || typeof findBroker !== "function") {
    return { made, reason: "kafkajs's cluster has an unexpected shape" };
  }
  const seen = new WeakSet<object>();
  cluster.findBroker = async function (this: unknown, query: { nodeId: string }) {
    const broker = await findBroker.call(this, query);
    if (broker && typeof broker === "object" && !seen.has(broker)) {
      seen.add(broker);
      onBroker(broker);
    }
    return broker;
  };
  return { made, cluster };
}
