import { createRequire } from "node:module";
import { Kafka, logLevel } from "kafkajs";
import { describe, expect, it, vi } from "vitest";
import {
  type AbortedTransaction,
  createReadCommittedConsumer,
  type FetchedPartition,
  type FetchedRecord,
  kafkajsFetchPathUsable,
  markAbortedInResponse,
  markAbortedRecords,
  readCommittedInfo,
} from "../src/internal/read-committed.js";

// kafkajs's own consumer Batch (what the runner hands to eachBatch /
// eachMessage), so the tests see exactly what a consumer delivers.
const require = createRequire(import.meta.url);
const Batch = require("kafkajs/src/consumer/batch.js") as new (
  topic: string,
  fetchedOffset: string,
  data: unknown,
) => {
  messages: { offset: string }[];
  lastOffset(): string;
  isEmptyDueToFiltering(): boolean;
};

interface BatchSpec {
  first: number;
  count?: number;
  /** -1: no producer id (plain producer). */
  pid: number;
  txn?: boolean;
  marker?: "abort" | "commit";
}

const ABORT_KEY = Buffer.from([0, 0, 0, 0]);
const COMMIT_KEY = Buffer.from([0, 0, 0, 1]);

/** Records of a fetch response built batch by batch, as kafkajs decodes them. */
function records(batches: BatchSpec[]): FetchedRecord[] {
  const out: FetchedRecord[] = [];
  for (const b of batches) {
    const count = b.marker ? 1 : (b.count ?? 1);
    const batchContext = {
      firstOffset: String(b.first),
      lastOffsetDelta: count - 1,
      producerId: String(b.pid),
      inTransaction: b.marker !== undefined || b.txn === true,
      isControlBatch: b.marker !== undefined,
    };
    for (let i = 0; i < count; i++) {
      out.push({
        offset: String(b.first + i),
        key: b.marker ? (b.marker === "abort" ? ABORT_KEY : COMMIT_KEY) : Buffer.from(`k${i}`),
        isControlRecord: b.marker !== undefined,
        batchContext,
      });
    }
  }
  return out;
}

function partition(
  batches: BatchSpec[],
  aborted: [pid: number, first: number][],
): FetchedPartition {
  return {
    abortedTransactions: aborted.map(
      ([pid, first]): AbortedTransaction => ({
        producerId: String(pid),
        firstOffset: String(first),
      }),
    ),
    messages: records(batches),
  };
}

/** What kafkajs delivers for the partition: offsets, and where it resolves to. */
function deliver(p: FetchedPartition, fetchedOffset = 0) {
  const highWatermark = String(
    Math.max(-1, ...(p.messages ?? []).map((m) => Number(m.offset))) + 1,
  );
  const batch = new Batch("t", String(fetchedOffset), {
    partition: 0,
    highWatermark,
    abortedTransactions: p.abortedTransactions,
    messages: p.messages,
  });
  return {
    offsets: batch.messages.map((m) => Number(m.offset)),
    lastOffset: Number(batch.lastOffset()),
    emptyDueToFiltering: batch.isEmptyDueToFiltering(),
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe("markAbortedRecords", () => {
  it("drops two overlapping aborted transactions whose markers are in the other order", () => {
    // the reproduction: A (pid 1) starts, B (pid 2) starts, C (pid 3)
    // writes one record; B aborts, then A, then C commits
    const spec: BatchSpec[] = [
      { first: 0, count: 100, pid: 1, txn: true },
      { first: 100, count: 100, pid: 2, txn: true },
      { first: 200, pid: 3, txn: true },
      { first: 201, pid: 2, marker: "abort" },
      { first: 202, pid: 1, marker: "abort" },
      { first: 203, pid: 3, marker: "commit" },
    ];
    // the broker lists aborted transactions in the order of their markers
    const aborted: [number, number][] = [
      [2, 100],
      [1, 0],
    ];
    // kafkajs alone lets A's records through (it does not sort the list)
    expect(deliver(partition(spec, aborted)).offsets.length).toBeGreaterThan(1);
    const p = partition(spec, aborted);
    expect(markAbortedRecords(p)).toBe(200);
    expect(p.abortedTransactions).toEqual([]);
    const got = deliver(p);
    expect(got.offsets).toEqual([200]);
    expect(got.lastOffset).toBe(203);
  });

  it("drops interleaved aborted transactions listed out of order", () => {
    const spec: BatchSpec[] = [
      { first: 0, count: 2, pid: 1, txn: true },
      { first: 2, count: 2, pid: 2, txn: true },
      { first: 4, count: 2, pid: 1, txn: true },
      { first: 6, count: 2, pid: 2, txn: true },
      { first: 8, count: 2, pid: 3, txn: true },
      { first: 10, pid: 2, marker: "abort" },
      { first: 11, pid: 3, marker: "commit" },
      { first: 12, count: 2, pid: 1, txn: true },
      { first: 14, pid: 1, marker: "abort" },
      { first: 15, count: 3, pid: -1 },
    ];
    const aborted: [number, number][] = [
      [2, 2],
      [1, 0],
    ];
    expect(deliver(partition(spec, aborted)).offsets).not.toEqual([8, 9, 15, 16, 17]);
    const p = partition(spec, aborted);
    markAbortedRecords(p);
    expect(deliver(p).offsets).toEqual([8, 9, 15, 16, 17]);
  });

  it("drops every aborted transaction already open when the fetch starts mid-transaction", () => {
    // both A and B started before offset 50; the broker lists both, and the
    // fetch begins with B's records
    const spec: BatchSpec[] = [
      { first: 50, count: 10, pid: 2, txn: true },
      { first: 60, count: 10, pid: 1, txn: true },
      { first: 70, count: 5, pid: 3, txn: true },
      { first: 75, pid: 1, marker: "abort" },
      { first: 76, pid: 2, marker: "abort" },
      { first: 77, pid: 3, marker: "commit" },
    ];
    const aborted: [number, number][] = [
      [1, 0],
      [2, 10],
    ];
    // kafkajs alone activates one entry per record: B's first record leaks
    expect(deliver(partition(spec, aborted), 50).offsets).toEqual([50, ...range(70, 74)]);
    const p = partition(spec, aborted);
    expect(markAbortedRecords(p)).toBe(20);
    const got = deliver(p, 50);
    expect(got.offsets).toEqual(range(70, 74));
    expect(got.lastOffset).toBe(77);
  });

  it("drops the aborted records of a batch that starts before the fetched offset", () => {
    // a compressed batch is returned whole: 40..59, fetch from 50
    const spec: BatchSpec[] = [
      { first: 40, count: 20, pid: 1, txn: true },
      { first: 60, pid: 1, marker: "abort" },
      { first: 61, count: 2, pid: 2, txn: true },
      { first: 63, pid: 2, marker: "commit" },
    ];
    const p = partition(spec, [[1, 40]]);
    markAbortedRecords(p);
    expect(deliver(p, 50).offsets).toEqual([61, 62]);
  });

  it("delivers a committed transaction of the same producer after its aborted one", () => {
    const spec: BatchSpec[] = [
      { first: 0, count: 5, pid: 1, txn: true },
      { first: 5, pid: 1, marker: "abort" },
      { first: 6, count: 4, pid: 1, txn: true },
      { first: 10, pid: 1, marker: "commit" },
      { first: 11, count: 2, pid: 1, txn: true },
      { first: 13, pid: 1, marker: "abort" },
      { first: 14, pid: 1, txn: true },
    ];
    const p = partition(spec, [
      [1, 11],
      [1, 0],
    ]);
    expect(markAbortedRecords(p)).toBe(7);
    // 14 is an open transaction's record the broker would not return past
    // the last stable offset; listed as not aborted it is delivered
    expect(deliver(p).offsets).toEqual([6, 7, 8, 9, 14]);
  });

  it("does not activate an aborted transaction that starts after this fetch", () => {
    const spec: BatchSpec[] = [
      { first: 0, count: 5, pid: 1, txn: true },
      { first: 5, pid: 1, marker: "commit" },
    ];
    const p = partition(spec, [[1, 100]]);
    expect(markAbortedRecords(p)).toBe(0);
    expect(deliver(p).offsets).toEqual(range(0, 4));
  });

  it("keeps non-transactional records of an aborted producer's neighbours and all control records out", () => {
    const spec: BatchSpec[] = [
      { first: 0, count: 3, pid: 1, txn: true },
      { first: 3, count: 2, pid: -1 },
      { first: 5, count: 2, pid: 7, txn: false }, // idempotent, not transactional
      { first: 7, pid: 1, marker: "abort" },
      { first: 8, pid: 2, marker: "commit" },
    ];
    const p = partition(spec, [[1, 0]]);
    expect(markAbortedRecords(p)).toBe(3);
    expect(deliver(p).offsets).toEqual([3, 4, 5, 6]);
  });

  it("a fetch of only aborted records and markers delivers nothing and still advances", () => {
    const spec: BatchSpec[] = [
      { first: 20, count: 4, pid: 1, txn: true },
      { first: 24, count: 4, pid: 2, txn: true },
      { first: 28, pid: 2, marker: "abort" },
      { first: 29, pid: 1, marker: "abort" },
    ];
    const p = partition(spec, [
      [2, 24],
      [1, 20],
    ]);
    markAbortedRecords(p);
    const got = deliver(p, 20);
    expect(got.offsets).toEqual([]);
    expect(got.emptyDueToFiltering).toBe(true);
    expect(got.lastOffset).toBe(29);
  });

  it("activates an aborted transaction by the batch's last offset, not its records", () => {
    // the listed first offset falls inside a batch (records before it were
    // compacted away): the whole batch is aborted, as in the Java consumer
    const p: FetchedPartition = {
      abortedTransactions: [{ producerId: "4", firstOffset: "12" }],
      messages: records([
        { first: 10, count: 5, pid: 4, txn: true },
        { first: 15, pid: 4, marker: "abort" },
      ]).filter((r) => Number(r.offset) >= 13),
    };
    expect(markAbortedRecords(p)).toBe(2);
    expect(deliver(p).offsets).toEqual([]);
  });

  it("leaves a partition without aborted transactions untouched", () => {
    const spec: BatchSpec[] = [
      { first: 0, count: 3, pid: 1, txn: true },
      { first: 3, pid: 1, marker: "commit" },
    ];
    for (const list of [undefined, null, []]) {
      const p: FetchedPartition = { abortedTransactions: list, messages: records(spec) };
      expect(markAbortedRecords(p)).toBe(0);
      expect(p.abortedTransactions).toBe(list);
      expect(deliver({ ...p, abortedTransactions: [] }).offsets).toEqual([0, 1, 2]);
    }
  });

  it("ignores records without a batch context (legacy message sets)", () => {
    const p: FetchedPartition = {
      abortedTransactions: [{ producerId: "1", firstOffset: "0" }],
      messages: [
        { offset: "0", key: null },
        { offset: "1", key: null },
      ],
    };
    expect(markAbortedRecords(p)).toBe(0);
  });
});

describe("markAbortedInResponse", () => {
  it("marks every partition of every topic of a fetch response", () => {
    const a = partition(
      [
        { first: 0, count: 2, pid: 1, txn: true },
        { first: 2, pid: 1, marker: "abort" },
      ],
      [[1, 0]],
    );
    const b = partition(
      [
        { first: 0, count: 3, pid: 2, txn: true },
        { first: 3, pid: 2, marker: "abort" },
      ],
      [[2, 0]],
    );
    const response = {
      responses: [
        { topicName: "x", partitions: [a] },
        { topicName: "y", partitions: [b, { abortedTransactions: [], messages: [] }] },
      ],
    };
    expect(markAbortedInResponse(response)).toBe(5);
    expect(markAbortedInResponse(undefined)).toBe(0);
    expect(markAbortedInResponse({ responses: [{ partitions: null }] })).toBe(0);
  });
});

describe("createReadCommittedConsumer", () => {
  const kafka = new Kafka({
    clientId: "rc-unit",
    brokers: ["127.0.0.1:1"],
    logLevel: logLevel.NOTHING,
  });

  it("uses Sluice's filter with the pinned kafkajs", () => {
    expect(kafkajsFetchPathUsable()).toBe(true);
    const consumer = createReadCommittedConsumer(kafka, { groupId: "g" });
    expect(readCommittedInfo(consumer)).toMatchObject({ filter: "sluice", reason: undefined });
    expect(typeof consumer.run).toBe("function");
  });

  it("falls back to kafkajs's filter, warning once, for a client from another kafkajs copy", async () => {
    // Captured, not printed: the warning is this test's expected output.
    const warnings: string[] = [];
    const emitWarning = vi.spyOn(process, "emitWarning").mockImplementation((w: string | Error) => {
      warnings.push(typeof w === "string" ? w : w.message);
    });
    try {
      const foreign = {
        consumer: (config: unknown) => kafka.consumer(config as { groupId: string }),
      } as unknown as Kafka;
      const first = createReadCommittedConsumer(foreign, { groupId: "g" });
      const second = createReadCommittedConsumer(foreign, { groupId: "g2" });
      await new Promise((r) => setTimeout(r, 10));
      expect(readCommittedInfo(first)?.filter).toBe("kafkajs");
      expect(readCommittedInfo(first)?.reason).toMatch(/another copy of kafkajs/);
      expect(readCommittedInfo(second)?.filter).toBe("kafkajs");
      expect(warnings.filter((w) => w.includes("read_committed filter"))).toHaveLength(1);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it("leaves a read_uncommitted consumer to kafkajs", () => {
    const consumer = createReadCommittedConsumer(kafka, { groupId: "g", readUncommitted: true });
    expect(readCommittedInfo(consumer)?.filter).toBe("kafkajs");
  });

  it("knows nothing of consumers it did not make", () => {
    expect(readCommittedInfo(kafka.consumer({ groupId: "g" }))).toBeUndefined();
  });
});
