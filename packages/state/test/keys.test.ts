import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  indexKey,
  parseIndexKey,
  parseWindowKey,
  readTime,
  windowKey,
  writeTime,
} from "../src/internal/keys.js";

const time = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });

describe("key encoding", () => {
  it("orders timestamps bytewise exactly as numbers, negative ones included", () => {
    fc.assert(
      fc.property(time, time, (a, b) => {
        const ba = Buffer.alloc(8);
        const bb = Buffer.alloc(8);
        writeTime(ba, 0, a);
        writeTime(bb, 0, b);
        expect(readTime(ba, 0)).toBe(a);
        expect(Math.sign(Buffer.compare(ba, bb))).toBe(Math.sign(a - b) || 0);
      }),
    );
  });

  it("round-trips window and index keys and sorts the index by end, then start", () => {
    fc.assert(
      fc.property(
        fc.string(),
        time,
        time,
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (key, start, end, p) => {
          expect(parseWindowKey(windowKey(p, key, start))).toEqual({ key, start });
          expect(parseIndexKey(indexKey(p, end, start, key))).toEqual({ end, start, key });
        },
      ),
    );
    const a = indexKey(0, 100, 5, "zzz");
    const b = indexKey(0, 101, -5, "a");
    expect(Buffer.compare(a, b)).toBe(-1);
  });
});
