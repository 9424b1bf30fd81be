// TxnOffsetCommit version 3 (offset commits fenced by group generation): the
// request's bytes field by field, the response's decoding, the broker hook on
// a stand-in broker, and the JoinGroup hook.
import { Kafka, logLevel } from "kafkajs";
import { describe, expect, it } from "vitest";
import { createKafkaProducer, ProducerError, sendOffsetsFenced } from "../src/index.js";
import {
  decodeTxnOffsetCommitV3,
  encodeTxnOffsetCommitV3,
  fenceOffsetCommits,
  type GroupGeneration,
  recordGroupGenerations,
  type TxnOffsetCommitArgs,
} from "../src/internal/group-generation.js";
import { byteReader } from "./flexible-bytes.js";

const args: TxnOffsetCommitArgs = {
  transactionalId: "tx-1",
  groupId: "grp",
  producerId: "4000000000",
  producerEpoch: 7,
  topics: [
    {
      topic: "events",
      partitions: [
        { partition: 0, offset: "42" },
        { partition: 3, offset: "9007199254740993", metadata: "m" },
      ],
    },
  ],
};
const generation: GroupGeneration = {
  groupId: "grp",
  generationId: 300,
  memberId: "member-é",
  groupInstanceId: null,
};

/** An independent reader of the request, following the protocol's field list. */
function readRequest(buf: Buffer) {
  const r = byteReader(buf);
  const out = {
    headerTags: r.uvarint(),
    transactionalId: r.string(),
    groupId: r.string(),
    producerId: r.int64(),
    producerEpoch: r.int16(),
    generationId: r.int32(),
    memberId: r.string(),
    groupInstanceId: r.string(),
    topics: [] as unknown[],
    bodyTags: -1,
    rest: 0,
  };
  const topics = r.arrayLength();
  for (let t = 0; t < topics; t++) {
    const name = r.string();
    const partitions: unknown[] = [];
    const n = r.arrayLength();
    for (let p = 0; p < n; p++) {
      partitions.push({
        partition: r.int32(),
        offset: r.int64(),
        leaderEpoch: r.int32(),
        metadata: r.string(),
        tags: r.uvarint(),
      });
    }
    out.topics.push({ name, partitions, tags: r.uvarint() });
  }
  out.bodyTags = r.uvarint();
  out.rest = r.rest();
  return out;
}

function response(errors: [number, number][], throttle = 5): Buffer {
  const topic = Buffer.from("events");
  const parts: Buffer[] = [Buffer.from([0])];
  const t = Buffer.alloc(4);
  t.writeInt32BE(throttle);
  parts.push(t, Buffer.from([2, topic.length + 1]), topic, Buffer.from([errors.length + 1]));
  for (const [partition, code] of errors) {
    const p = Buffer.alloc(6);
    p.writeInt32BE(partition);
    p.writeInt16BE(code, 4);
    parts.push(p, Buffer.from([0]));
  }
  parts.push(Buffer.from([0, 0]));
  return Buffer.concat(parts);
}

const SEND = Symbol("private:Broker:sendRequest");

/** A stand-in for kafkajs's Broker: records what reaches its private sendRequest. */
class StandInBroker {
  versions: Record<number, { minVersion: number; maxVersion: number }> = {
    28: { minVersion: 0, maxVersion: 3 },
  };
  sent: { request: { apiVersion: number; encode: () => Promise<{ buf: Buffer }> } }[] = [];
  answer = response([[0, 0]]);
  kafkajsCalls = 0;
  async txnOffsetCommit(_a: TxnOffsetCommitArgs): Promise<unknown> {
    this.kafkajsCalls++;
    return "kafkajs";
  }
  async [SEND](r: {
    request: { apiVersion: number; encode: () => Promise<{ buf: Buffer }> };
    response: { decode: (b: Buffer) => Promise<unknown>; parse: (d: unknown) => Promise<unknown> };
  }) {
    this.sent.push(r);
    return r.response.parse(await r.response.decode(this.answer));
  }
}

describe("TxnOffsetCommit version 3", () => {
  it("encodes every field of the request, after the header's empty tagged fields", () => {
    const r = readRequest(encodeTxnOffsetCommitV3(args, generation));
    expect(r).toEqual({
      headerTags: 0,
      transactionalId: "tx-1",
      groupId: "grp",
      producerId: 4000000000n,
      producerEpoch: 7,
      generationId: 300,
      memberId: "member-é",
      groupInstanceId: null,
      topics: [
        {
          name: "events",
          partitions: [
            { partition: 0, offset: 42n, leaderEpoch: -1, metadata: null, tags: 0 },
            { partition: 3, offset: 9007199254740993n, leaderEpoch: -1, metadata: "m", tags: 0 },
          ],
          tags: 0,
        },
      ],
      bodyTags: 0,
      rest: 0,
    });
  });

  it("writes a static member's instance id", () => {
    const r = readRequest(encodeTxnOffsetCommitV3(args, { ...generation, groupInstanceId: "i-1" }));
    expect(r.groupInstanceId).toBe("i-1");
  });

  it("decodes a response after its header's tagged fields; refuses a truncated one", () => {
    expect(
      decodeTxnOffsetCommitV3(
        response(
          [
            [0, 0],
            [3, 22],
          ],
          11,
        ),
      ),
    ).toEqual({
      throttleTime: 11,
      topics: [
        {
          topic: "events",
          partitions: [
            { partition: 0, errorCode: 0 },
            { partition: 3, errorCode: 22 },
          ],
        },
      ],
    });
    const whole = response([[0, 0]]);
    expect(() => decodeTxnOffsetCommitV3(whole.subarray(0, whole.length - 4))).toThrow(/truncated/);
  });

  it("skips tagged fields by their size", () => {
    // a header tagged field (tag 1, 3 bytes) before the body
    const tagged = Buffer.concat([Buffer.from([1, 1, 3, 9, 9, 9]), response([[0, 0]]).subarray(1)]);
    expect(decodeTxnOffsetCommitV3(tagged)).toEqual(decodeTxnOffsetCommitV3(response([[0, 0]])));
  });
});

describe("fenceOffsetCommits on a stand-in broker", () => {
  it("leaves commits without a generation to kafkajs", async () => {
    const b = new StandInBroker();
    fenceOffsetCommits(b, () => undefined);
    await expect(b.txnOffsetCommit(args)).resolves.toBe("kafkajs");
    expect(b.kafkajsCalls).toBe(1);
    expect(b.sent).toHaveLength(0);
  });

  it("sends version 3 with the group's generation", async () => {
    const b = new StandInBroker();
    const asked: string[] = [];
    fenceOffsetCommits(b, (g) => {
      asked.push(g);
      return generation;
    });
    await b.txnOffsetCommit(args);
    expect(asked).toEqual(["grp"]);
    expect(b.kafkajsCalls).toBe(0);
    expect(b.sent).toHaveLength(1);
    const sent = b.sent[0]!.request;
    expect(sent.apiVersion).toBe(3);
    expect(readRequest((await sent.encode()).buf).generationId).toBe(300);
  });

  it("turns a partition's error into kafkajs's error (ILLEGAL_GENERATION)", async () => {
    const b = new StandInBroker();
    b.answer = response([
      [0, 0],
      [3, 22],
    ]);
    fenceOffsetCommits(b, () => generation);
    await expect(b.txnOffsetCommit(args)).rejects.toMatchObject({ type: "ILLEGAL_GENERATION" });
  });

  it("refuses, rather than commit unfenced, on a broker older than version 3", async () => {
    const b = new StandInBroker();
    b.versions[28] = { minVersion: 0, maxVersion: 2 };
    fenceOffsetCommits(b, () => generation);
    const err = await b.txnOffsetCommit(args).catch((e: unknown) => e);
    expect(ProducerError.isInstance(err)).toBe(true);
    expect((err as ProducerError).code).toBe("PRODUCER_FENCING_UNAVAILABLE");
    expect(b.sent).toHaveLength(0);
    expect(b.kafkajsCalls).toBe(0);
  });
});

describe("recordGroupGenerations", () => {
  it("reports each JoinGroup answer's generation and member id", async () => {
    const answers = [
      { generationId: 1, memberId: "m-1", leaderId: "m-1" },
      { generationId: 2, memberId: "m-1", leaderId: "m-2" },
    ];
    const broker = { joinGroup: async (_a: unknown) => answers.shift() };
    const seen: GroupGeneration[] = [];
    recordGroupGenerations(broker, (g) => seen.push(g));
    expect(await broker.joinGroup({ groupId: "g" })).toMatchObject({ generationId: 1 });
    await broker.joinGroup({ groupId: "g" });
    expect(seen).toEqual([
      { groupId: "g", generationId: 1, memberId: "m-1", groupInstanceId: null },
      { groupId: "g", generationId: 2, memberId: "m-1", groupInstanceId: null },
    ]);
  });
});

describe("sendOffsetsFenced", () => {
  const kafka = new Kafka({ brokers: ["127.0.0.1:1"], logLevel: logLevel.NOTHING });
  const offsets = { consumerGroupId: "grp", topics: [] };

  it("refuses a producer that cannot fence (not transactional)", async () => {
    const producer = createKafkaProducer({ kafka });
    const err = await sendOffsetsFenced(producer, {} as never, offsets, generation).catch(
      (e: unknown) => e,
    );
    expect((err as ProducerError).code).toBe("PRODUCER_FENCING_UNAVAILABLE");
  });

  it("refuses a generation of another group", async () => {
    const producer = createKafkaProducer({ kafka, config: { transactionalId: "t" } });
    const err = await sendOffsetsFenced(producer, {} as never, offsets, {
      ...generation,
      groupId: "other",
    }).catch((e: unknown) => e);
    expect((err as ProducerError).code).toBe("PRODUCER_INVALID_OPTIONS");
  });
});
