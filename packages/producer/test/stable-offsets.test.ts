// OffsetFetch version 7 with require_stable (stable committed offsets): the
// request's bytes field by field, the response's decoding, and
// fetchStableOffsets on a stand-in cluster and broker (retries while
// UNSTABLE_OFFSET_COMMIT, looks a lost coordinator up again, refuses a broker
// without version 7).
import { describe, expect, it } from "vitest";
import { fetchStableOffsets, ProducerError } from "../src/index.js";
import { decodeOffsetFetchV7, encodeOffsetFetchV7 } from "../src/internal/stable-offsets.js";
import { byteReader } from "./flexible-bytes.js";

/** The request read back with an independent reader, field by field. */
function readRequest(buf: Buffer) {
  const r = byteReader(buf);
  const headerTags = r.uvarint();
  const groupId = r.string();
  const topics: { name: string | null; partitions: number[]; tags: number }[] = [];
  for (let t = r.arrayLength(); t > 0; t--) {
    const name = r.string();
    const partitions: number[] = [];
    for (let p = r.arrayLength(); p > 0; p--) partitions.push(r.int32());
    topics.push({ name, partitions, tags: r.uvarint() });
  }
  const requireStable = r.int8();
  const bodyTags = r.uvarint();
  return { headerTags, groupId, topics, requireStable, bodyTags, rest: r.rest() };
}

interface AnswerPartition {
  partition: number;
  offset?: bigint;
  metadata?: string | null;
  errorCode?: number;
}

/** An independent writer of a response (after the correlation id); lengths under 128. */
function response(
  topics: { name: string; partitions: AnswerPartition[] }[],
  { errorCode = 0, throttle = 0 } = {},
): Buffer {
  const parts: Buffer[] = [Buffer.from([0])]; // the response header's tagged fields
  const int = (bytes: number, v: number | bigint) => {
    const b = Buffer.alloc(bytes);
    if (bytes === 8) b.writeBigInt64BE(BigInt(v));
    else if (bytes === 4) b.writeInt32BE(Number(v));
    else b.writeInt16BE(Number(v));
    parts.push(b);
  };
  const str = (s: string | null) => {
    if (s === null) return parts.push(Buffer.from([0]));
    const b = Buffer.from(s);
    parts.push(Buffer.from([b.length + 1]), b);
  };
  int(4, throttle);
  parts.push(Buffer.from([topics.length + 1]));
  for (const t of topics) {
    str(t.name);
    parts.push(Buffer.from([t.partitions.length + 1]));
    for (const p of t.partitions) {
      int(4, p.partition);
      int(8, p.offset ?? -1n);
      int(4, 3); // committed_leader_epoch
      str(p.metadata ?? null);
      int(2, p.errorCode ?? 0);
      parts.push(Buffer.from([0]));
    }
    parts.push(Buffer.from([0]));
  }
  int(2, errorCode);
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

describe("OffsetFetch version 7", () => {
  it("encodes every field of the request, require_stable set, after the header's empty tagged fields", () => {
    const buf = encodeOffsetFetchV7("grüppe", [
      { topic: "events", partitions: [0, 3, 2147483647] },
      { topic: "clicks", partitions: [] },
    ]);
    expect(readRequest(buf)).toEqual({
      headerTags: 0,
      groupId: "grüppe",
      topics: [
        { name: "events", partitions: [0, 3, 2147483647], tags: 0 },
        { name: "clicks", partitions: [], tags: 0 },
      ],
      requireStable: 1,
      bodyTags: 0,
      rest: 0,
    });
  });

  it("decodes a response: offsets as strings, -1 for none, null metadata, error codes", () => {
    const buf = response(
      [
        {
          name: "events",
          partitions: [
            { partition: 0, offset: 42n, metadata: "m" },
            { partition: 1, offset: 9007199254740993n },
            { partition: 2, errorCode: 88 },
          ],
        },
      ],
      { throttle: 7, errorCode: 0 },
    );
    expect(decodeOffsetFetchV7(buf)).toEqual({
      throttleTime: 7,
      topics: [
        {
          topic: "events",
          partitions: [
            { partition: 0, offset: "42", leaderEpoch: 3, metadata: "m", errorCode: 0 },
            {
              partition: 1,
              offset: "9007199254740993",
              leaderEpoch: 3,
              metadata: null,
              errorCode: 0,
            },
            { partition: 2, offset: "-1", leaderEpoch: 3, metadata: null, errorCode: 88 },
          ],
        },
      ],
      errorCode: 0,
    });
    expect(decodeOffsetFetchV7(response([], { errorCode: 16 }))).toEqual({
      throttleTime: 0,
      topics: [],
      errorCode: 16,
    });
  });

  it("refuses a truncated response, wherever it ends", () => {
    const whole = response([{ name: "events", partitions: [{ partition: 0, metadata: "meta" }] }]);
    for (let end = 0; end < whole.length; end++) {
      expect(() => decodeOffsetFetchV7(whole.subarray(0, end))).toThrow(
        /OffsetFetch response: truncated/,
      );
    }
  });

  it("skips tagged fields by their size", () => {
    const plain = response([{ name: "events", partitions: [{ partition: 0, offset: 5n }] }]);
    // a header tagged field (tag 1, 3 bytes) before the body
    const tagged = Buffer.concat([Buffer.from([1, 1, 3, 9, 9, 9]), plain.subarray(1)]);
    expect(decodeOffsetFetchV7(tagged)).toEqual(decodeOffsetFetchV7(plain));
  });
});

type Answer = Buffer | Error;

interface SentRequest {
  request: { apiKey: number; apiVersion: number; encode: () => Promise<{ buffer: Buffer }> };
  response: { decode: (b: Buffer) => Promise<unknown>; parse: (d: unknown) => Promise<unknown> };
}

const SEND = Symbol("private:Broker:sendRequest");

/** A stand-in for kafkajs's Broker: answers what reaches its private sendRequest from a list. */
class StandInBroker {
  versions: Record<number, { minVersion: number; maxVersion: number }> = {
    9: { minVersion: 0, maxVersion: 8 },
  };
  sent: Buffer[] = [];
  sentAt: number[] = [];
  constructor(readonly answers: Answer[]) {}
  async [SEND](r: SentRequest) {
    expect(r.request).toMatchObject({ apiKey: 9, apiVersion: 7 });
    this.sent.push((await r.request.encode()).buffer);
    this.sentAt.push(Date.now());
    const answer = this.answers.length > 1 ? this.answers.shift() : this.answers[0];
    if (answer instanceof Error) throw answer;
    return r.response.parse(await r.response.decode(answer as Buffer));
  }
}

/** A stand-in for kafkajs's cluster: each lookup hands out the next broker. */
function standInCluster(...brokers: StandInBroker[]) {
  const cluster = {
    lookups: 0,
    async findGroupCoordinator({ groupId }: { groupId: string }) {
      expect(groupId).toBe("grp");
      const broker = brokers[Math.min(cluster.lookups, brokers.length - 1)];
      cluster.lookups++;
      return broker as object;
    },
  };
  return cluster;
}

const asked = [{ topic: "events", partitions: [0, 1] }];
const stable = response([
  {
    name: "events",
    partitions: [
      { partition: 0, offset: 12n },
      { partition: 1, offset: -1n },
    ],
  },
]);
const pending = response([
  {
    name: "events",
    partitions: [{ partition: 0, errorCode: 88 }, { partition: 1 }],
  },
]);
const expected = [
  { topic: "events", partition: 0, offset: "12" },
  { topic: "events", partition: 1, offset: "-1" },
];

async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err as Error & Record<string, unknown>,
  );
}

describe("fetchStableOffsets on a stand-in cluster", () => {
  it("answers the committed offsets, -1 where none", async () => {
    const broker = new StandInBroker([stable]);
    await expect(fetchStableOffsets(standInCluster(broker), "grp", asked)).resolves.toEqual(
      expected,
    );
    expect(readRequest(broker.sent[0] as Buffer)).toMatchObject({
      groupId: "grp",
      topics: [{ name: "events", partitions: [0, 1] }],
      requireStable: 1,
    });
  });

  it("asks again after 10, 20, 40 ms while a partition's commit is pending, then answers", async () => {
    const broker = new StandInBroker([pending, pending, pending, stable]);
    const cluster = standInCluster(broker);
    await expect(fetchStableOffsets(cluster, "grp", asked)).resolves.toEqual(expected);
    expect(broker.sent).toHaveLength(4);
    expect(cluster.lookups).toBe(1);
    const gaps = broker.sentAt.slice(1).map((t, i) => t - (broker.sentAt[i] as number));
    // timers may fire a millisecond early
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
  });

  it("also waits while the whole group answers UNSTABLE_OFFSET_COMMIT", async () => {
    const broker = new StandInBroker([response([], { errorCode: 88 }), stable]);
    await expect(fetchStableOffsets(standInCluster(broker), "grp", asked)).resolves.toEqual(
      expected,
    );
    expect(broker.sent).toHaveLength(2);
  });

  it("throws PRODUCER_OFFSETS_UNSTABLE (retryable) when the commit is still pending at the timeout", async () => {
    const broker = new StandInBroker([pending]);
    const started = Date.now();
    const err = await rejection(
      fetchStableOffsets(standInCluster(broker), "grp", asked, { timeoutMs: 100 }),
    );
    expect(ProducerError.isInstance(err)).toBe(true);
    expect(err.code).toBe("PRODUCER_OFFSETS_UNSTABLE");
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/events-0 after 100 ms/);
    expect((err.cause as { type?: string }).type).toBe("UNSTABLE_OFFSET_COMMIT");
    expect(Date.now() - started).toBeGreaterThanOrEqual(99);
    // 10 + 20 + 40 ms, then the rest of the 100 ms: the last request at the deadline
    expect(broker.sent.length).toBeGreaterThanOrEqual(4);
    expect(broker.sent.length).toBeLessThanOrEqual(6);
  });

  it.each([
    ["NOT_COORDINATOR", response([], { errorCode: 16 })],
    ["COORDINATOR_NOT_AVAILABLE", response([], { errorCode: 15 })],
    ["COORDINATOR_LOAD_IN_PROGRESS", response([], { errorCode: 14 })],
    [
      "NOT_COORDINATOR on a partition",
      response([{ name: "events", partitions: [{ partition: 0, errorCode: 16 }] }]),
    ],
    ["a connection error", Object.assign(new Error("closed"), { name: "KafkaJSConnectionError" })],
  ])("looks the coordinator up again after %s", async (_what, answer) => {
    const old = new StandInBroker([answer]);
    const fresh = new StandInBroker([stable]);
    const cluster = standInCluster(old, fresh);
    await expect(fetchStableOffsets(cluster, "grp", asked)).resolves.toEqual(expected);
    expect(cluster.lookups).toBe(2);
    expect(old.sent).toHaveLength(1);
    expect(fresh.sent).toHaveLength(1);
  });

  it("gives up on a coordinator still lost after 10 lookups again, with kafkajs's error", async () => {
    const broker = new StandInBroker([response([], { errorCode: 15 })]);
    const cluster = standInCluster(broker);
    const err = await rejection(fetchStableOffsets(cluster, "grp", asked));
    expect(err.type).toBe("GROUP_COORDINATOR_NOT_AVAILABLE");
    expect(cluster.lookups).toBe(11);
  });

  it("throws kafkajs's error for any other error code, without asking again", async () => {
    const broker = new StandInBroker([
      response([{ name: "events", partitions: [{ partition: 0, errorCode: 88 }] }], {
        errorCode: 30,
      }),
    ]);
    const err = await rejection(fetchStableOffsets(standInCluster(broker), "grp", asked));
    expect(err.type).toBe("GROUP_AUTHORIZATION_FAILED");
    expect(broker.sent).toHaveLength(1);
  });

  it("refuses, rather than read unstable offsets, a broker without version 7", async () => {
    const broker = new StandInBroker([stable]);
    broker.versions[9] = { minVersion: 0, maxVersion: 6 };
    const err = await rejection(fetchStableOffsets(standInCluster(broker), "grp", asked));
    expect(ProducerError.isInstance(err)).toBe(true);
    expect(err.code).toBe("PRODUCER_FENCING_UNAVAILABLE");
    expect(err.message).toMatch(/up to version 6.*Kafka 2\.5/);
    expect(broker.sent).toHaveLength(0);
  });

  it("refuses a broker object that is not kafkajs's", async () => {
    const cluster = { findGroupCoordinator: async () => ({ versions: { 9: { maxVersion: 8 } } }) };
    const err = await rejection(fetchStableOffsets(cluster, "grp", asked));
    expect(err.code).toBe("PRODUCER_FENCING_UNAVAILABLE");
  });

  it("stops waiting when its signal aborts, with the signal's reason", async () => {
    const broker = new StandInBroker([pending]);
    const controller = new AbortController();
    const fetching = fetchStableOffsets(standInCluster(broker), "grp", asked, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error("stopping")), 50);
    await expect(fetching).rejects.toThrow("stopping");
  });

  it("asks nothing for no partitions", async () => {
    const broker = new StandInBroker([stable]);
    const cluster = standInCluster(broker);
    await expect(
      fetchStableOffsets(cluster, "grp", [{ topic: "events", partitions: [] }]),
    ).resolves.toEqual([]);
    expect(cluster.lookups).toBe(0);
  });

  it.each([
    ["a cluster that is not kafkajs's", {}, "grp", asked, {}],
    ["an empty group id", standInCluster(), "", asked, {}],
    ["a negative partition", standInCluster(), "grp", [{ topic: "events", partitions: [-1] }], {}],
    ["a topic without a name", standInCluster(), "grp", [{ topic: "", partitions: [0] }], {}],
    ["a zero timeout", standInCluster(), "grp", asked, { timeoutMs: 0 }],
  ])(
    "refuses %s with PRODUCER_INVALID_OPTIONS",
    async (_what, cluster, groupId, topics, options) => {
      const err = await rejection(fetchStableOffsets(cluster, groupId, topics, options));
      expect(err.code).toBe("PRODUCER_INVALID_OPTIONS");
    },
  );
});
