import { describe, expect, it } from "vitest";
import {
  count,
  createTestDriver,
  defineJob,
  hopping,
  session,
  sliding,
  tumbling,
  type WindowSpec,
} from "../src/index.js";
import { fixedWindowStarts } from "../src/windows.js";

function driverFor(spec: WindowSpec) {
  return createTestDriver(defineJob<number>().window(spec).aggregate(count()));
}

describe("window definitions", () => {
  it("parse durations and validate", () => {
    expect(tumbling({ size: "1m", grace: "10s" })).toEqual({
      type: "tumbling",
      sizeMs: 60_000,
      graceMs: 10_000,
    });
    expect(hopping({ size: "5m", advance: "1m" })).toEqual({
      type: "hopping",
      sizeMs: 300_000,
      advanceMs: 60_000,
      graceMs: 0,
    });
    expect(sliding({ size: 30 })).toEqual({ type: "sliding", sizeMs: 30, graceMs: 0 });
    expect(session({ gap: "30m" })).toEqual({ type: "session", gapMs: 1_800_000, graceMs: 0 });
    expect(() => tumbling({ size: 0 })).toThrow(/greater than 0/);
    expect(() => tumbling({ size: "soon" })).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
    expect(() => hopping({ size: 10, advance: 20 })).toThrow(/must not exceed size/);
    expect(() => session({ gap: 5, grace: -1 })).toThrow(
      expect.objectContaining({ code: "WINDOWING_INVALID_OPTIONS" }),
    );
    expect(() => tumbling({} as never)).toThrow(/size is required/);
  });

  it("assign fixed windows", () => {
    expect(fixedWindowStarts(tumbling({ size: 10 }), 25)).toEqual([20]);
    expect(fixedWindowStarts(hopping({ size: 10, advance: 5 }), 25)).toEqual([20, 25]);
    expect(fixedWindowStarts(hopping({ size: 10, advance: 3 }), 7)).toEqual([0, 3, 6]);
    expect(fixedWindowStarts(hopping({ size: 10, advance: 5 }), 2)).toEqual([0]);
  });
});

describe("closing boundaries", () => {
  it("tumbling closes at end + grace, not a millisecond earlier; later records are late", () => {
    const d = driverFor(tumbling({ size: 10, grace: 5 }));
    d.pipe(1, { key: "k", timestamp: 3 });
    d.advanceStreamTime(14);
    expect(d.results).toEqual([]);
    d.pipe(1, { key: "k", timestamp: 9 }); // still within grace
    d.advanceStreamTime(15);
    expect(d.results).toEqual([
      {
        key: "k",
        windowStart: 0,
        windowEnd: 10,
        value: 2,
        final: true,
        emitSeq: 0,
        partition: 0,
        id: "0:10:0:k",
      },
    ]);
    d.pipe(1, { key: "k", timestamp: 9 });
    expect(d.late).toHaveLength(1);
    expect(d.late[0]).toMatchObject({
      key: "k",
      timestamp: 9,
      streamTime: 15,
      closedWindowStarts: [0],
    });
  });

  it("sliding window [t+1-size, t+1) closes at t + 1 + grace", () => {
    const d = driverFor(sliding({ size: 10, grace: 2 }));
    d.pipe(1, { key: "k", timestamp: 5 });
    d.advanceStreamTime(7);
    expect(d.results).toEqual([]);
    d.advanceStreamTime(8);
    expect(d.results.map((r) => [r.windowStart, r.windowEnd, r.value])).toEqual([[-4, 6, 1]]);
    d.pipe(1, { key: "k", timestamp: 12 }); // its window still sees the record at 5
    d.advanceStreamTime(14);
    expect(d.results).toHaveLength(1);
    d.advanceStreamTime(15);
    expect(d.results.map((r) => [r.windowStart, r.windowEnd, r.value])).toEqual([
      [-4, 6, 1],
      [3, 13, 2],
    ]);
  });

  it("session closes when stream time passes last + gap + grace, and merges bridged sessions", () => {
    const d = driverFor(session({ gap: 5, grace: 4 }));
    d.pipe(1, { key: "k", timestamp: 0 });
    d.pipe(1, { key: "k", timestamp: 8 }); // 8 - 0 > gap: a second session
    expect(d.state().map((w) => [w.windowStart, w.windowEnd])).toEqual([
      [0, 1],
      [8, 9],
    ]);
    d.pipe(1, { key: "k", timestamp: 3 }); // would bridge both, but 3 is more than grace behind 8
    expect(d.late).toHaveLength(1);
    expect(d.late[0]?.closedWindowStarts).toEqual([]);
    const e = driverFor(session({ gap: 5, grace: 6 }));
    e.pipe(1, { key: "k", timestamp: 0 });
    e.pipe(1, { key: "k", timestamp: 10 });
    e.pipe(1, { key: "k", timestamp: 5 });
    expect(e.state().map((w) => [w.windowStart, w.windowEnd, w.value])).toEqual([[0, 11, 3]]);
    e.advanceStreamTime(21); // last 10 + gap 5 + grace 6 = 21: not yet closed
    expect(e.results).toEqual([]);
    e.advanceStreamTime(22);
    expect(e.results.map((r) => [r.windowStart, r.windowEnd, r.value, r.final])).toEqual([
      [0, 11, 3, true],
    ]);
  });

  it("hopping adds a record to each window that contains it", () => {
    const d = driverFor(hopping({ size: 10, advance: 5 }));
    d.pipe(1, { key: "k", timestamp: 7 });
    d.advanceStreamTime(100);
    expect(d.results.map((r) => [r.windowStart, r.windowEnd])).toEqual([
      [0, 10],
      [5, 15],
    ]);
  });
});

describe("emit modes", () => {
  it("update emits every change and a final at close; everyMs emits on stream-time ticks", () => {
    const u = createTestDriver(
      defineJob<number>()
        .window(tumbling({ size: 10 }))
        .aggregate(count())
        .emit("update"),
    );
    u.pipe(1, { key: "k", timestamp: 1 });
    u.pipe(1, { key: "k", timestamp: 2 });
    u.advanceStreamTime(10);
    expect(u.results.map((r) => [r.value, r.final, r.emitSeq, r.id])).toEqual([
      [1, false, 0, "0:10:0:k"],
      [2, false, 1, "0:10:1:k"],
      [2, true, 2, "0:10:2:k"],
    ]);
    const e = createTestDriver(
      defineJob<number>()
        .window(tumbling({ size: 100 }))
        .aggregate(count())
        .emit({ everyMs: "20ms" }),
    );
    e.pipe(1, { key: "k", timestamp: 1 });
    e.pipe(1, { key: "k", timestamp: 5 });
    expect(e.results).toEqual([]);
    e.pipe(1, { key: "k", timestamp: 20 }); // tick 0 -> 1 fires before the record is applied
    expect(e.results.map((r) => [r.value, r.final])).toEqual([[2, false]]);
    e.advanceStreamTime(45); // tick 2: the window changed since, so it fires
    e.advanceStreamTime(65); // tick 3: unchanged, nothing
    e.advanceStreamTime(100);
    expect(e.results.map((r) => [r.value, r.final, r.emitSeq])).toEqual([
      [2, false, 0],
      [3, false, 1],
      [3, true, 2],
    ]);
  });
});
