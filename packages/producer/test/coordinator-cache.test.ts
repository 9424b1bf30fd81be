// The coordinator cache on a small stand-in for kafkajs's cluster: a
// findGroupCoordinator that, like kafkajs 2.2.4's, asks
// findGroupCoordinatorMetadata and then findBroker for the answer's node, and
// brokers that refuse coordinator requests for keys they do not coordinate,
// as Kafka does; kafkajs's own transaction manager (eosManager) runs on it
// too. The broker tests (kafka-producer.integration.test.ts) cover the cache
// on kafkajs's cluster itself.
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  type CoordinatorCache,
  cacheCoordinators,
  coordinatorCacheUsable,
} from "../src/internal/coordinator-cache.js";

const GROUP = 0;
const TRANSACTION = 1;

class ProtocolError extends Error {
  constructor(readonly type: string) {
    super(type);
  }
}

/** A broker of the stand-in cluster; logs the requests it receives. */
class FakeBroker {
  received: string[] = [];
  /** Errors the next requests reject with, in order. */
  failNext: Error[] = [];
  constructor(
    readonly nodeId: number,
    private readonly cluster: FakeCluster,
  ) {}

  private async request(name: string, coordinatorKey: string | undefined): Promise<string> {
    this.received.push(name);
    await Promise.resolve();
    const fail = this.failNext.shift();
    if (fail) throw fail;
    if (coordinatorKey && this.cluster.coordinators.get(coordinatorKey) !== this.nodeId) {
      throw new ProtocolError("NOT_COORDINATOR_FOR_GROUP");
    }
    return `${name}@${this.nodeId}`;
  }
  async initProducerId(a: { transactionalId: string }) {
    await this.request("initProducerId", `${TRANSACTION}:${a.transactionalId}`);
    return { producerId: 7, producerEpoch: 0 };
  }
  addPartitionsToTxn(a: { transactionalId: string }) {
    return this.request("addPartitionsToTxn", `${TRANSACTION}:${a.transactionalId}`);
  }
  addOffsetsToTxn(a: { transactionalId: string }) {
    return this.request("addOffsetsToTxn", `${TRANSACTION}:${a.transactionalId}`);
  }
  endTxn(a: { transactionalId: string }) {
    return this.request("endTxn", `${TRANSACTION}:${a.transactionalId}`);
  }
  txnOffsetCommit(a: { groupId: string }) {
    return this.request("txnOffsetCommit", `${GROUP}:${a.groupId}`);
  }
  produce() {
    return this.request("produce", undefined);
  }
}

/** Stands in for kafkajs's cluster: what the cache relies on, shaped as kafkajs 2.2.4's. */
class FakeCluster {
  /** `${coordinatorType}:${key}` → the coordinator's node id. */
  coordinators = new Map<string, number>([
    [`${TRANSACTION}:tx`, 1],
    [`${GROUP}:group`, 1],
  ]);
  brokers = new Map<number, FakeBroker>([1, 2, 3].map((id) => [id, new FakeBroker(id, this)]));
  /** Nodes findBroker cannot reach. */
  down = new Set<number>();
  /** FindCoordinator requests that reached a broker. */
  findCoordinatorRequests = 0;
  /** Lookups the next FindCoordinator requests fail with, in order. */
  lookupFailures: Error[] = [];
  /** When set, FindCoordinator answers wait for it. */
  gate: Promise<void> | undefined;

  /** Holds FindCoordinator answers back until the function returned is called. */
  hold(): () => void {
    let open: () => void = () => {};
    this.gate = new Promise((r) => {
      open = r;
    });
    return open;
  }

  async findGroupCoordinatorMetadata(q: { groupId: string; coordinatorType: number }) {
    this.findCoordinatorRequests++;
    await (this.gate ?? Promise.resolve());
    const fail = this.lookupFailures.shift();
    if (fail) throw fail;
    const nodeId = this.coordinators.get(`${q.coordinatorType}:${q.groupId}`);
    return { coordinator: { nodeId } };
  }
  async findGroupCoordinator({
    groupId,
    coordinatorType = GROUP,
  }: {
    groupId: string;
    coordinatorType?: number;
  }) {
    const { coordinator } = await this.findGroupCoordinatorMetadata({ groupId, coordinatorType });
    return await this.findBroker({ nodeId: coordinator.nodeId! });
  }
  async findBroker({ nodeId }: { nodeId: number }): Promise<FakeBroker> {
    await Promise.resolve();
    if (this.down.has(nodeId)) {
      throw Object.assign(new Error("Connection error: connect ECONNREFUSED"), {
        name: "KafkaJSConnectionError",
        code: "ECONNREFUSED",
      });
    }
    return this.brokers.get(nodeId)!;
  }
  async disconnect() {}
  // what kafkajs's transaction manager needs besides
  async refreshMetadataIfNecessary() {}
  async findControllerBroker() {
    return this.brokers.get(1)!;
  }
}

interface EosManager {
  initProducerId(): Promise<void>;
  beginTransaction(): void;
  addPartitionsToTransaction(
    topics: { topic: string; partitions: { partition: number }[] }[],
  ): Promise<void>;
  sendOffsets(o: {
    consumerGroupId: string;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<void>;
  commit(): Promise<void>;
}

/** kafkajs 2.2.4's transaction manager for transactional id `tx`, on `cluster`. */
function kafkajsTransactions(cluster: FakeCluster): EosManager {
  const require = createRequire(import.meta.url);
  const createEosManager = require("kafkajs/src/producer/eosManager/index.js") as (
    o: object,
  ) => EosManager;
  const logger = { debug() {}, info() {}, warn() {}, error() {}, namespace: () => logger };
  return createEosManager({ logger, cluster, transactional: true, transactionalId: "tx" });
}

/** A stand-in cluster with the cache installed on it and on each of its brokers. */
function cached(): { cluster: FakeCluster; cache: CoordinatorCache } {
  const cluster = new FakeCluster();
  const cache = cacheCoordinators(cluster);
  if (typeof cache === "string") throw new Error(cache);
  for (const broker of cluster.brokers.values()) cache.onBroker(broker);
  return { cluster, cache };
}

const tx = { groupId: "tx", coordinatorType: TRANSACTION };
const group = { groupId: "group", coordinatorType: GROUP };
const txArgs = () => ({ transactionalId: "tx", producerId: 7, producerEpoch: 0 });

describe("coordinator cache", () => {
  it("is usable with the installed kafkajs, and refuses a cluster without kafkajs's methods", () => {
    expect(coordinatorCacheUsable()).toBe(true);
    expect(cacheCoordinators({ findBroker: async () => ({}) })).toBe(
      "kafkajs's cluster has an unexpected shape",
    );
  });

  it("answers repeated lookups of a coordinator from the cache, per coordinator type and key", async () => {
    const { cluster, cache } = cached();
    for (let i = 0; i < 3; i++) expect((await cluster.findGroupCoordinator(tx)).nodeId).toBe(1);
    for (let i = 0; i < 2; i++) await cluster.findGroupCoordinator(group);
    // the same key under the other coordinator type is another coordinator
    cluster.coordinators.set(`${GROUP}:tx`, 2);
    expect(
      (await cluster.findGroupCoordinator({ groupId: "tx", coordinatorType: GROUP })).nodeId,
    ).toBe(2);
    expect(cluster.findCoordinatorRequests).toBe(3);
    expect(cache.lookups).toEqual({ sent: 3, cached: 3 });
  });

  it("shares one lookup in flight, and keeps no failed lookup", async () => {
    const { cluster, cache } = cached();
    const open = cluster.hold();
    const waiting = [1, 2, 3].map(() => cluster.findGroupCoordinator(tx));
    open();
    expect((await Promise.all(waiting)).map((b) => b.nodeId)).toEqual([1, 1, 1]);
    expect(cache.lookups).toEqual({ sent: 1, cached: 2 });

    cluster.lookupFailures.push(new ProtocolError("GROUP_COORDINATOR_NOT_AVAILABLE"));
    await expect(cluster.findGroupCoordinator(group)).rejects.toThrow(
      "GROUP_COORDINATOR_NOT_AVAILABLE",
    );
    expect((await cluster.findGroupCoordinator(group)).nodeId).toBe(1);
    expect(cache.lookups).toEqual({ sent: 3, cached: 2 });
  });

  it("drops every answer when a request of the transactional path or a Produce rejects, on any broker", async () => {
    const { cluster, cache } = cached();
    const lookUpBoth = async () => {
      await cluster.findGroupCoordinator(tx);
      await cluster.findGroupCoordinator(group);
    };
    await lookUpBoth();
    await lookUpBoth();
    expect(cache.lookups).toEqual({ sent: 2, cached: 2 });
    let sent = 2;
    const failures: Array<[string, (b: FakeBroker) => Promise<unknown>]> = [
      ["produce", (b) => b.produce()],
      ["addPartitionsToTxn", (b) => b.addPartitionsToTxn(txArgs())],
      ["initProducerId", (b) => b.initProducerId(txArgs())],
      ["endTxn", (b) => b.endTxn(txArgs())],
      ["addOffsetsToTxn", (b) => b.addOffsetsToTxn(txArgs())],
      ["txnOffsetCommit", (b) => b.txnOffsetCommit({ groupId: "group" })],
    ];
    for (const [name, call] of failures) {
      // broker 2 coordinates nothing: the failure need not come from a coordinator
      const broker = cluster.brokers.get(name === "produce" ? 2 : 1)!;
      broker.failNext.push(new Error("broken"));
      await expect(call(broker), name).rejects.toThrow("broken");
      await lookUpBoth();
      sent += 2;
      expect(cache.lookups.sent, name).toBe(sent);
    }
    // a request that succeeds keeps the answers, and so do the errors only
    // the coordinator gives
    const b1 = cluster.brokers.get(1)!;
    await b1.endTxn(txArgs());
    b1.failNext.push(new ProtocolError("CONCURRENT_TRANSACTIONS"));
    await expect(b1.endTxn(txArgs())).rejects.toThrow("CONCURRENT_TRANSACTIONS");
    b1.failNext.push(new ProtocolError("GROUP_LOAD_IN_PROGRESS"));
    await expect(b1.txnOffsetCommit({ groupId: "group" })).rejects.toThrow(
      "GROUP_LOAD_IN_PROGRESS",
    );
    await lookUpBoth();
    expect(cache.lookups.sent).toBe(sent);
  });

  it("drops every answer when the cached coordinator's broker cannot be reached, so the next lookup finds the new one", async () => {
    const { cluster, cache } = cached();
    expect((await cluster.findGroupCoordinator(tx)).nodeId).toBe(1);
    // node 1 goes away; its transactions move to node 3
    cluster.down.add(1);
    cluster.coordinators.set(`${TRANSACTION}:tx`, 3);
    await expect(cluster.findGroupCoordinator(tx)).rejects.toThrow("ECONNREFUSED");
    expect((await cluster.findGroupCoordinator(tx)).nodeId).toBe(3);
    expect(cache.lookups).toEqual({ sent: 2, cached: 1 });
  });

  it("drops every answer when the cluster disconnects", async () => {
    const { cluster, cache } = cached();
    await cluster.findGroupCoordinator(tx);
    await cluster.disconnect();
    await cluster.findGroupCoordinator(tx);
    expect(cache.lookups).toEqual({ sent: 2, cached: 0 });
  });

  it("keeps out of the cache the answer of a lookup in flight when the answers are dropped", async () => {
    const { cluster, cache } = cached();
    const open = cluster.hold();
    const inFlight = cluster.findGroupCoordinator(tx);
    cluster.brokers.get(2)!.failNext.push(new Error("boom"));
    await expect(cluster.brokers.get(2)!.produce()).rejects.toThrow("boom");
    open();
    await inFlight;
    cluster.gate = undefined;
    await cluster.findGroupCoordinator(tx);
    expect(cache.lookups).toEqual({ sent: 2, cached: 0 });
  });

  it("sends EndTxn, AddOffsetsToTxn and TxnOffsetCommit once more to a freshly found coordinator when the cached one has moved", async () => {
    const { cluster, cache } = cached();
    const stale = await cluster.findGroupCoordinator(tx);
    const staleGroup = await cluster.findGroupCoordinator(group);
    // both coordinators move while their answers are cached
    cluster.coordinators.set(`${TRANSACTION}:tx`, 2);
    cluster.coordinators.set(`${GROUP}:group`, 3);

    // as kafkajs's eosManager does: the broker it found, then the request
    const broker = await cluster.findGroupCoordinator(tx);
    expect(broker).toBe(stale);
    await expect(broker.addOffsetsToTxn(txArgs())).resolves.toBe("addOffsetsToTxn@2");
    // the fresh answer is cached in turn
    const again = await cluster.findGroupCoordinator(tx);
    expect(again.nodeId).toBe(2);
    await expect(staleGroup.txnOffsetCommit({ groupId: "group" })).resolves.toBe(
      "txnOffsetCommit@3",
    );
    cluster.coordinators.set(`${TRANSACTION}:tx`, 1);
    await expect(again.endTxn(txArgs())).resolves.toBe("endTxn@1");
    expect(cluster.brokers.get(1)!.received).toEqual([
      "addOffsetsToTxn",
      "txnOffsetCommit",
      "endTxn",
    ]);
    expect(cluster.brokers.get(2)!.received).toEqual(["addOffsetsToTxn", "endTxn"]);
    expect(cluster.brokers.get(3)!.received).toEqual(["txnOffsetCommit"]);
    expect(cache.lookups).toEqual({ sent: 5, cached: 2 });
  });

  it("sends EndTxn once more when it was lost to a connection error or a timeout", async () => {
    const { cluster, cache } = cached();
    const b1 = cluster.brokers.get(1)!;
    for (const name of ["KafkaJSConnectionClosedError", "KafkaJSRequestTimeoutError"]) {
      b1.failNext.push(Object.assign(new Error(name), { name }));
      await expect(b1.endTxn(txArgs())).resolves.toBe("endTxn@1");
    }
    expect(b1.received).toEqual(["endTxn", "endTxn", "endTxn", "endTxn"]);
    expect(cache.lookups).toEqual({ sent: 2, cached: 0 });
  });

  it("sends a request once more only once, only after a coordinator or connection error, and never InitProducerId or AddPartitionsToTxn", async () => {
    const { cluster } = cached();
    const b1 = cluster.brokers.get(1)!;
    const b2 = cluster.brokers.get(2)!;
    // the coordinator found afresh refuses too: the caller gets its error
    cluster.coordinators.set(`${TRANSACTION}:tx`, 2);
    b2.failNext.push(new ProtocolError("GROUP_COORDINATOR_NOT_AVAILABLE"));
    await expect(b1.endTxn(txArgs())).rejects.toThrow("GROUP_COORDINATOR_NOT_AVAILABLE");
    expect(b1.received).toEqual(["endTxn"]);
    expect(b2.received).toEqual(["endTxn"]);

    // another error is the caller's at once
    b2.failNext.push(new ProtocolError("INVALID_PRODUCER_EPOCH"));
    await expect(b2.endTxn(txArgs())).rejects.toThrow("INVALID_PRODUCER_EPOCH");
    expect(b2.received).toEqual(["endTxn", "endTxn"]);

    // kafkajs retries these two itself
    await expect(b1.initProducerId(txArgs())).rejects.toThrow("NOT_COORDINATOR_FOR_GROUP");
    await expect(b1.addPartitionsToTxn(txArgs())).rejects.toThrow("NOT_COORDINATOR_FOR_GROUP");
    expect(b2.received).toHaveLength(2);

    // when no coordinator can be found, the caller gets the request's error
    cluster.lookupFailures.push(new Error("no coordinator"));
    await expect(b1.endTxn(txArgs())).rejects.toThrow("NOT_COORDINATOR_FOR_GROUP");
  });

  it("lets kafkajs's transaction manager commit after its coordinators moved, where a failed EndTxn would leave it unable to begin another transaction", async () => {
    const topics = [{ topic: "out", partitions: [{ partition: 0 }] }];
    const offsets = [{ topic: "in", partitions: [{ partition: 0, offset: "5" }] }];

    // kafkajs alone: a failed EndTxn leaves the transaction at COMMITTING
    const alone = new FakeCluster();
    const stuck = kafkajsTransactions(alone);
    await stuck.initProducerId();
    stuck.beginTransaction();
    await stuck.addPartitionsToTransaction(topics);
    alone.brokers.get(1)!.failNext.push(new ProtocolError("NOT_COORDINATOR_FOR_GROUP"));
    await expect(stuck.commit()).rejects.toThrow("NOT_COORDINATOR_FOR_GROUP");
    expect(() => stuck.beginTransaction()).toThrow(/in state "COMMITTING"/);
    await expect(stuck.commit()).rejects.toThrow(/in state "COMMITTING"/);

    // with the cache: the transaction's coordinator moves before a commit,
    // the group's before a sendOffsets, each while its answer is cached
    const { cluster, cache } = cached();
    const eos = kafkajsTransactions(cluster);
    const transaction = async (before: { commit?: () => void; sendOffsets?: () => void }) => {
      eos.beginTransaction();
      await eos.addPartitionsToTransaction(topics);
      before.sendOffsets?.();
      await eos.sendOffsets({ consumerGroupId: "group", topics: offsets });
      before.commit?.();
      await eos.commit();
    };
    await eos.initProducerId();
    await transaction({ commit: () => cluster.coordinators.set(`${TRANSACTION}:tx`, 2) });
    await transaction({});
    await transaction({ sendOffsets: () => cluster.coordinators.set(`${GROUP}:group`, 3) });
    expect(cluster.brokers.get(1)!.received).toEqual([
      "initProducerId",
      "addPartitionsToTxn",
      "addOffsetsToTxn",
      "txnOffsetCommit",
      "endTxn", // refused, sent again to node 2
      "txnOffsetCommit",
      "txnOffsetCommit", // refused, sent again to node 3
    ]);
    expect(cluster.brokers.get(2)!.received).toEqual([
      "endTxn",
      ...["addPartitionsToTxn", "addOffsetsToTxn", "endTxn"],
      ...["addPartitionsToTxn", "addOffsetsToTxn", "endTxn"],
    ]);
    expect(cluster.brokers.get(3)!.received).toEqual(["txnOffsetCommit"]);
    // kafkajs's 13 lookups and 2 to find the moved coordinators: sent are the
    // first of each coordinator, the 2 after a refusal and the group's in the
    // second transaction, the transaction's in the third (each refusal
    // dropped every answer)
    expect(cache.lookups).toEqual({ sent: 6, cached: 9 });
  });

  it("sends AddPartitionsToTxn and AddOffsetsToTxn again soon while the previous transaction completes, up to 10 times", async () => {
    const { cluster, cache } = cached();
    const b1 = cluster.brokers.get(1)!;
    const concurrent = () => new ProtocolError("CONCURRENT_TRANSACTIONS");
    await cluster.findGroupCoordinator(tx);
    b1.failNext.push(concurrent(), concurrent(), concurrent());
    const t0 = Date.now();
    await expect(b1.addPartitionsToTxn(txArgs())).resolves.toBe("addPartitionsToTxn@1");
    // 2 + 4 + 8 ms of pauses, not kafkajs's 300 ms
    expect(Date.now() - t0).toBeLessThan(250);
    b1.failNext.push(concurrent());
    await expect(b1.addOffsetsToTxn(txArgs())).resolves.toBe("addOffsetsToTxn@1");
    expect(b1.received).toEqual([
      ...Array(4).fill("addPartitionsToTxn"),
      "addOffsetsToTxn",
      "addOffsetsToTxn",
    ]);

    // then kafkajs gets the error
    b1.received = [];
    b1.failNext.push(...Array.from({ length: 12 }, concurrent));
    await expect(b1.addPartitionsToTxn(txArgs())).rejects.toThrow("CONCURRENT_TRANSACTIONS");
    expect(b1.received).toHaveLength(10);
    // EndTxn is not sent again for it, and the cached answer was kept throughout
    b1.failNext = [concurrent()];
    await expect(b1.endTxn(txArgs())).rejects.toThrow("CONCURRENT_TRANSACTIONS");
    await cluster.findGroupCoordinator(tx);
    expect(cache.lookups).toEqual({ sent: 1, cached: 1 });
  });
});
