// The kafkajs plumbing shared by Sluice's hooks (record encoder, windowing's
// read_committed filter): a pinned, once-only check of kafkajs's internals,
// and a producer or consumer made on a child of the client, whose private
// cluster is the only thing touched.
import kafkajs, { type Kafka } from "kafkajs";
import { describe, expect, it } from "vitest";
import {
  onPrivateCluster,
  PINNED_KAFKAJS_VERSION,
  pinnedKafkajsCheck,
  symbolNamed,
} from "../src/internal/kafkajs-private-cluster.js";

const { Kafka: KafkaClass, logLevel } = kafkajs;
const client = () =>
  new KafkaClass({
    clientId: "private-cluster-test",
    brokers: ["127.0.0.1:1"],
    logLevel: logLevel.NOTHING,
  });

describe("pinnedKafkajsCheck", () => {
  it("checks once, with kafkajs's own modules, and caches the answer or the reason", () => {
    let calls = 0;
    const check = pinnedKafkajsCheck("the test hook", (require) => {
      calls++;
      const pkg = require("kafkajs/package.json") as { version: string };
      return { version: pkg.version };
    });
    expect(check()).toEqual({ version: PINNED_KAFKAJS_VERSION });
    expect(check()).toBe(check());
    expect(calls).toBe(1);

    let thrown = 0;
    const failing = pinnedKafkajsCheck("the test hook", () => {
      thrown++;
      throw new Error("no such module");
    });
    expect(failing()).toBe("kafkajs internals could not be loaded: no such module");
    expect(failing()).toBe("kafkajs internals could not be loaded: no such module");
    expect(thrown).toBe(1);
  });
});

describe("onPrivateCluster", () => {
  it("refuses a client from another kafkajs copy without making anything", () => {
    let made = 0;
    const r = onPrivateCluster(
      {} as Kafka,
      () => made++,
      () => {},
    );
    expect(r).toEqual({
      made: undefined,
      reason: "the kafka client comes from another copy of kafkajs",
    });
    expect(made).toBe(0);
  });

  it("makes on a child of the client and hooks the new cluster's findBroker, leaving the client as it was", () => {
    const kafka = client();
    const keysBefore = Reflect.ownKeys(kafka);
    const createCluster = symbolNamed(kafka, "private:Kafka:createCluster")!;
    expect(createCluster).toBeDefined();
    const ownBefore = (kafka as unknown as Record<symbol, unknown>)[createCluster];
    let child: Kafka | undefined;
    const r = onPrivateCluster(
      kafka,
      (c) => {
        child = c;
        return KafkaClass.prototype.producer.call(c, {});
      },
      () => {},
    );
    expect(r.reason).toBeUndefined();
    expect(r.made).toBeDefined();
    // the private cluster, for hooks of its own
    expect(typeof (r.cluster as { findGroupCoordinator?: unknown }).findGroupCoordinator).toBe(
      "function",
    );
    expect(Object.getPrototypeOf(child)).toBe(kafka);
    expect(Reflect.ownKeys(kafka)).toEqual(keysBefore);
    expect((kafka as unknown as Record<symbol, unknown>)[createCluster]).toBe(ownBefore);
  });

  it("says so when what it made created no cluster", () => {
    const r = onPrivateCluster(
      client(),
      () => "nothing",
      () => {},
    );
    expect(r).toEqual({ made: "nothing", reason: "kafkajs's cluster has an unexpected shape" });
  });
});
