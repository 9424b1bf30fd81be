// One kafkajs message per partition: the records are put back in place and
// kafkajs's sequence numbers (one per message it saw) become record sequence
// numbers, as the broker expects them, across retries and new producer ids.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GroupedProduceArgs } from "../src/internal/grouped-records.js";
import {
  expandProduceArgs,
  groupByPartition,
  incrementSequence,
  PartitionRecords,
  SequenceMismatch,
  SequenceTranslator,
} from "../src/internal/grouped-records.js";
import type { ProduceArgs } from "../src/internal/record-batch.js";

const INT32_MAX = 2 ** 31 - 1;

const records = (partition: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    partition,
    key: Buffer.from(`k${i}`),
    value: Buffer.from(`v${partition}-${i}`),
  }));

describe("incrementSequence", () => {
  it("adds, and wraps after INT32_MAX to 0 as the broker does", () => {
    expect(incrementSequence(0, 200)).toBe(200);
    expect(incrementSequence(INT32_MAX - 3, 3)).toBe(INT32_MAX);
    expect(incrementSequence(INT32_MAX, 1)).toBe(0);
    expect(incrementSequence(INT32_MAX - 1, 3)).toBe(1);
  });
});

describe("SequenceTranslator", () => {
  it("gives each request the records sent before it on that partition", () => {
    const t = new SequenceTranslator();
    expect(t.translate("7", 0, "t", 0, 0, 1, 200)).toBe(0);
    expect(t.translate("7", 0, "t", 1, 0, 1, 5)).toBe(0);
    expect(t.translate("7", 0, "t", 0, 1, 1, 150)).toBe(200);
    expect(t.translate("7", 0, "t", 0, 2, 1, 10)).toBe(350);
    expect(t.translate("7", 0, "t", 1, 1, 1, 5)).toBe(5);
    expect(t.translate("7", 0, "u", 0, 0, 1, 3)).toBe(0);
  });

  it("a retry after kafkajs gave the sequence back gets the same record sequence", () => {
    const t = new SequenceTranslator();
    expect(t.translate("7", 0, "t", 0, 0, 1, 200)).toBe(0);
    expect(t.translate("7", 0, "t", 0, 1, 1, 100)).toBe(200);
    // the request failed: kafkajs sends it again with sequence 1
    expect(t.translate("7", 0, "t", 0, 1, 1, 100)).toBe(200);
    expect(t.translate("7", 0, "t", 0, 1, 1, 100)).toBe(200);
    expect(t.translate("7", 0, "t", 0, 2, 1, 1)).toBe(300);
  });

  it("counts plain messages one for one", () => {
    const t = new SequenceTranslator();
    expect(t.translate("7", 0, "t", 0, 0, 3, 3)).toBe(0);
    expect(t.translate("7", 0, "t", 0, 3, 1, 50)).toBe(3);
    expect(t.translate("7", 0, "t", 0, 4, 2, 2)).toBe(53);
  });

  it("starts again at 0 with a new producer id or epoch", () => {
    const t = new SequenceTranslator();
    expect(t.translate("7", 0, "t", 0, 0, 1, 200)).toBe(0);
    expect(t.translate("7", 0, "t", 0, 1, 1, 200)).toBe(200);
    expect(t.translate("7", 1, "t", 0, 0, 1, 10)).toBe(0);
    expect(t.translate("8", 1, "t", 0, 0, 1, 10)).toBe(0);
    expect(t.translate("8", 1, "t", 0, 1, 1, 10)).toBe(10);
  });

  it("leaves sequences alone for a producer that is not idempotent", () => {
    const t = new SequenceTranslator();
    expect(t.translate(-1, 0, "t", 0, 0, 1, 200)).toBe(0);
    expect(t.translate(-1, 0, "t", 0, 0, 1, 200)).toBe(0);
  });

  it("wraps record sequences after INT32_MAX", () => {
    const t = new SequenceTranslator();
    let given = 0;
    let expected = 0;
    // 2^31 records in batches of 2^28
    for (let i = 0; i < 8; i++) {
      expect(t.translate("7", 0, "t", 0, given++, 1, 2 ** 28)).toBe(expected);
      expected = incrementSequence(expected, 2 ** 28);
    }
    expect(expected).toBe(0);
    expect(t.translate("7", 0, "t", 0, given, 1, 1)).toBe(0);
    // a batch ending on INT32_MAX - 1, one on INT32_MAX, one across the wrap
    const u = new SequenceTranslator();
    expect(u.translate("7", 0, "t", 0, 0, 1, INT32_MAX - 3)).toBe(0);
    expect(u.translate("7", 0, "t", 0, 1, 1, 2)).toBe(INT32_MAX - 3);
    expect(u.translate("7", 0, "t", 0, 2, 1, 3)).toBe(INT32_MAX - 1);
    expect(u.translate("7", 0, "t", 0, 3, 1, 1)).toBe(1);
  });

  it("refuses a sequence that is neither the next nor a retry of the last", () => {
    const t = new SequenceTranslator();
    expect(() => t.translate("7", 0, "t", 0, 1, 1, 10)).toThrow(SequenceMismatch);
    const u = new SequenceTranslator();
    u.translate("7", 0, "t", 0, 0, 1, 10);
    u.translate("7", 0, "t", 0, 1, 1, 10);
    expect(() => u.translate("7", 0, "t", 0, 0, 1, 10)).toThrow(SequenceMismatch);
    expect(() => u.translate("7", 0, "t", 0, 3, 1, 10)).toThrow(SequenceMismatch);
  });

  it("matches a producer that counts records, under any order of successes and failures", () => {
    // kafkajs's eosManager, per partition: a request takes the current
    // sequence and adds its message count; a failed request subtracts it
    // again (sendMessages.js). The oracle does the same with record counts.
    const step = fc.record({
      partition: fc.integer({ min: 0, max: 3 }),
      records: fc.integer({ min: 1, max: 500 }),
      failures: fc.integer({ min: 0, max: 3 }),
      newProducer: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
        const t = new SequenceTranslator();
        let producerId = 1;
        let kafkajs = new Map<number, number>();
        let oracle = new Map<number, number>();
        for (const s of steps) {
          if (s.newProducer && producerId < 4) {
            producerId++;
            kafkajs = new Map();
            oracle = new Map();
          }
          const expected = oracle.get(s.partition) ?? 0;
          for (let attempt = 0; attempt <= s.failures; attempt++) {
            const given = kafkajs.get(s.partition) ?? 0;
            kafkajs.set(s.partition, given + 1);
            const first = t.translate(String(producerId), 0, "t", s.partition, given, 1, s.records);
            expect(first).toBe(expected);
            if (attempt < s.failures) kafkajs.set(s.partition, given); // failed: given back
          }
          oracle.set(s.partition, expected + s.records);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("groupByPartition and expandProduceArgs", () => {
  it("groups in first-seen partition order, keeping each partition's order", () => {
    const messages = [
      ...records(2, 2),
      ...records(0, 3),
      ...records(2, 1).map((m) => ({ ...m, value: Buffer.from("late") })),
    ];
    const groups = groupByPartition(messages);
    expect(groups.map((g) => g.partition)).toEqual([2, 0]);
    expect(groups[0]!.records.map((r) => String(r.value))).toEqual(["v2-0", "v2-1", "late"]);
    expect(groups[1]!.records).toHaveLength(3);
    // kafkajs requires a defined value; its encoder cannot write this one
    expect(groups[0]!.value).toBeDefined();
    expect(() => Buffer.byteLength(groups[0]!.value as unknown as string)).toThrow();
  });

  it("puts the records back and translates the sequences", () => {
    const t = new SequenceTranslator();
    const args = (first: number): GroupedProduceArgs => ({
      producerId: "9",
      producerEpoch: 0,
      topicData: [
        {
          topic: "t",
          partitions: [
            {
              partition: 0,
              firstSequence: first,
              messages: [new PartitionRecords(0, records(0, 4))],
            },
            {
              partition: 1,
              firstSequence: first,
              messages: [new PartitionRecords(1, records(1, 2))],
            },
          ],
        },
      ],
    });
    const a = expandProduceArgs(args(0), t);
    expect(a.topicData[0]!.partitions.map((p) => [p.firstSequence, p.messages.length])).toEqual([
      [0, 4],
      [0, 2],
    ]);
    expect(a.topicData[0]!.partitions[0]!.messages[3]!.value).toEqual(Buffer.from("v0-3"));
    const b = expandProduceArgs(args(1), t);
    expect(b.topicData[0]!.partitions.map((p) => p.firstSequence)).toEqual([4, 2]);
  });

  it("leaves plain arguments as they are when there is nothing to translate", () => {
    const args: ProduceArgs = {
      topicData: [{ topic: "t", partitions: [{ partition: 0, messages: records(0, 2) }] }],
    };
    expect(expandProduceArgs(args, undefined)).toBe(args);
  });
});
