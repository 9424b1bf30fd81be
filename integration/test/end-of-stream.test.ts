import { describe, expect, it } from "vitest";
import { createKeyPartitioner, EVENT_TYPES } from "../src/generator/index.js";
import { pipelineConfig } from "../src/pipeline/config.js";
import { endOfStreamEvents, isEndOfStream } from "../src/pipeline/end-of-stream.js";
import { UserEventCodec } from "../src/pipeline/user-event-codec.js";

describe("endOfStreamEvents", () => {
  const config = pipelineConfig("unit");
  const pages = Array.from({ length: 30 }, (_, i) => `/p/${i}`);
  const markers = endOfStreamEvents(config, pages, 123_000);

  it("reaches every source partition, every event type and every page, at the given time", () => {
    const partitionOf = createKeyPartitioner(config.partitions);
    expect(new Set(markers.map((m) => partitionOf(m.user_id))).size).toBe(config.partitions);
    expect(new Set(markers.map((m) => m.type))).toEqual(new Set(EVENT_TYPES));
    expect(new Set(markers.map((m) => m.page))).toEqual(new Set(pages));
    for (const m of markers) expect(m.ts).toBe(123_000);
  });

  it("are valid events that isEndOfStream recognizes, unlike generated users", () => {
    for (const m of markers) {
      expect(UserEventCodec.validate(m)).toBe(true);
      expect(isEndOfStream(m)).toBe(true);
    }
    expect(isEndOfStream({ user_id: "u000001" })).toBe(false);
  });

  it("still covers every partition with fewer pages than partitions", () => {
    const few = endOfStreamEvents(config, ["/"], 1);
    expect(few.length).toBeGreaterThanOrEqual(config.partitions);
  });
});
