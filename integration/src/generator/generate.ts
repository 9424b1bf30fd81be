import { createKeyPartitioner } from "./partitioner.js";
import { createRandom, ZipfSampler } from "./random.js";
import type { EventType, UserEvent } from "./user-event.js";

/** Options of {@link generateEvents}; every field but `count` has a default. */
export interface GeneratorOptions {
  /** Records to produce, invalid ones included. */
  count: number;
  /** Seed of every random choice. @defaultValue 1 */
  seed?: number;
  /** Event time of the first session start, epoch ms. @defaultValue 2026-01-01T00:00:00Z */
  startMs?: number;
  /** Average events per second of event time (not wall time). @defaultValue 20 */
  eventsPerSecond?: number;
  /** Distinct users (Zipf-skewed). @defaultValue 5000 */
  users?: number;
  /** Distinct pages (Zipf-skewed). @defaultValue 200 */
  pages?: number;
  /** Zipf exponent of user activity. @defaultValue 1.1 */
  userSkew?: number;
  /** Zipf exponent of page popularity. @defaultValue 1 */
  pageSkew?: number;
  /** Mean events per visit. @defaultValue 8 */
  sessionEventsMean?: number;
  /** Mean think time between two events of a visit, ms. @defaultValue 30000 */
  eventGapMeanMs?: number;
  /** Fraction of events sent after events newer than them. @defaultValue 0.05 */
  outOfOrderFraction?: number;
  /** Largest delay of an out-of-order event, ms; keep it below the jobs' grace. @defaultValue 5000 */
  maxDisorderMs?: number;
  /** Fraction of events whose event time is far behind their partition's stream time. @defaultValue 0.005 */
  lateFraction?: number;
  /** How far behind a late event is, ms; keep it above session gap + grace + hop size. @defaultValue 86400000 (a day) */
  lateByMs?: number;
  /** Fraction of records that are not valid events (bad JSON or schema). @defaultValue 0.005 */
  invalidFraction?: number;
  /** Partitions of the topic, to track stream time per partition. @defaultValue 12 */
  partitions?: number;
}

/** What one generated record is. */
export type RecordKind = "valid" | "late" | "invalid";

/** One record in the order the producer sends it, with what the generator knows about it. */
export interface GeneratedRecord {
  /** Position in send order, from 0. */
  seq: number;
  /** Kafka key: the user id. */
  key: string;
  /** Partition the default partitioner assigns to `key`. */
  partition: number;
  kind: RecordKind;
  /** The event, for `valid` and `late` records. */
  event?: UserEvent;
  /** The bytes sent, for `invalid` records. */
  raw?: string;
  /** Why an `invalid` record is invalid. */
  invalidReason?: string;
}

/** Everything {@link generateEvents} produced: the records and the options used. */
export interface GeneratedStream {
  options: Required<GeneratorOptions>;
  records: GeneratedRecord[];
}

export const generatorDefaults: Required<Omit<GeneratorOptions, "count">> = {
  seed: 1,
  startMs: Date.UTC(2026, 0, 1),
  eventsPerSecond: 20,
  users: 5000,
  pages: 200,
  userSkew: 1.1,
  pageSkew: 1,
  sessionEventsMean: 8,
  eventGapMeanMs: 30_000,
  outOfOrderFraction: 0.05,
  maxDisorderMs: 5000,
  lateFraction: 0.005,
  lateByMs: 24 * 3_600_000,
  invalidFraction: 0.005,
  partitions: 12,
};

/** Name of page rank `k`: the home page, search and cart first, then products. */
export function pageName(k: number): string {
  if (k === 0) return "/";
  if (k === 1) return "/search";
  if (k === 2) return "/cart";
  return `/product/${k - 2}`;
}

/** Name of user rank `k`. */
export function userName(k: number): string {
  return `u${String(k).padStart(6, "0")}`;
}

function fraction(name: string, v: number): number {
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be within [0, 1], got ${v}`);
  return v;
}

function positive(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be > 0, got ${v}`);
  return v;
}

/** Validates options and fills defaults. */
export function resolveGeneratorOptions(opts: GeneratorOptions): Required<GeneratorOptions> {
  const o = { ...generatorDefaults, ...opts };
  if (!Number.isInteger(o.count) || o.count < 0) {
    throw new RangeError(`count must be a non-negative integer, got ${o.count}`);
  }
  for (const k of ["eventsPerSecond", "sessionEventsMean", "eventGapMeanMs"] as const) {
    positive(k, o[k]);
  }
  for (const k of ["users", "pages", "partitions"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`${k} must be an integer >= 1`);
  }
  for (const k of ["outOfOrderFraction", "lateFraction", "invalidFraction"] as const) {
    fraction(k, o[k]);
  }
  if (o.maxDisorderMs < 0 || o.lateByMs <= o.maxDisorderMs) {
    throw new RangeError("need 0 <= maxDisorderMs < lateByMs");
  }
  return o;
}

interface Draft {
  event: UserEvent;
  emitAt: number;
  order: number;
}

const INVALID_KINDS = ["not-json", "missing-user", "unknown-type", "negative-revenue", "ts-string"];

function invalidRecord(e: UserEvent, variant: number): { raw: string; reason: string } {
  const reason = INVALID_KINDS[variant % INVALID_KINDS.length]!;
  const json = JSON.stringify(e);
  switch (reason) {
    case "not-json":
      return { raw: json.slice(0, Math.max(1, json.length - 7)), reason };
    case "missing-user": {
      const { user_id: _drop, ...rest } = e;
      return { raw: JSON.stringify(rest), reason };
    }
    case "unknown-type":
      return { raw: JSON.stringify({ ...e, type: "teleport" }), reason };
    case "negative-revenue":
      return { raw: JSON.stringify({ ...e, type: "purchase", revenue_cents: -100 }), reason };
    default:
      return { raw: JSON.stringify({ ...e, ts: new Date(e.ts).toISOString() }), reason };
  }
}

/**
 * Generates a deterministic stream of user events: visits (sessions) start as a
 * Poisson process, each by a Zipf-picked user, and walk a funnel of page views,
 * clicks, add-to-carts and purchases on Zipf-picked pages. A fraction is sent
 * slightly out of order (within `maxDisorderMs`), a fraction is late (event
 * time `lateByMs` behind, only where the partition's stream time is already
 * that far ahead and the partition has already sent a valid event of the same
 * type and of the same page) and a fraction is invalid. Same options, same
 * records.
 *
 * @param opts - see {@link GeneratorOptions}
 * @returns the records in send order, each labelled with its kind
 */
export function generateEvents(opts: GeneratorOptions): GeneratedStream {
  const o = resolveGeneratorOptions(opts);
  const random = createRandom(o.seed);
  const users = new ZipfSampler(o.users, o.userSkew);
  const pages = new ZipfSampler(o.pages, o.pageSkew);
  const partitionOf = createKeyPartitioner(o.partitions);

  // 1. Visits until there are enough events; then keep the `count` earliest.
  const sessionIntervalMs = (1000 * o.sessionEventsMean) / o.eventsPerSecond;
  const drafts: Draft[] = [];
  let sessionStart = o.startMs;
  const visit = () => {
    const user = userName(users.sample(random));
    const n = 1 + Math.floor(random.exponential(o.sessionEventsMean - 1));
    let t = Math.round(sessionStart);
    let cart = 0;
    for (let i = 0; i < n; i++) {
      let type: EventType = "page_view";
      if (i > 0) {
        const r = random.next();
        if (r < 0.55) type = "page_view";
        else if (r < 0.85) type = "click";
        else if (r < 0.95) type = "add_to_cart";
        else type = cart > 0 ? "purchase" : "page_view";
      }
      const page = type === "purchase" ? "/checkout" : pageName(pages.sample(random));
      const event: UserEvent = { event_id: "", user_id: user, type, page, ts: t };
      if (type === "add_to_cart") cart++;
      if (type === "purchase") {
        event.revenue_cents = random.int(500, 20_000) * cart;
        cart = 0;
      }
      drafts.push({ event, emitAt: t, order: drafts.length });
      t += Math.max(1000, Math.round(random.exponential(o.eventGapMeanMs)));
    }
    sessionStart += random.exponential(sessionIntervalMs);
  };
  while (drafts.length < o.count) visit();
  // Every visit starting before the count-th earliest event must exist, or the
  // tail of the stream would be thinner than the rest.
  if (o.count > 0) {
    const cutoff = drafts.map((d) => d.event.ts).sort((a, b) => a - b)[o.count - 1]!;
    while (sessionStart <= cutoff) visit();
  }
  drafts.sort((a, b) => a.event.ts - b.event.ts || a.order - b.order);
  drafts.length = Math.min(drafts.length, o.count);

  // 2. Some events go out a little after newer ones.
  for (const d of drafts) {
    if (random.chance(o.outOfOrderFraction)) d.emitAt = d.event.ts + random.int(1, o.maxDisorderMs);
  }
  drafts.sort((a, b) => a.emitAt - b.emitAt || a.order - b.order);

  // 3. In send order: ids, late and invalid records, stream time per partition.
  const streamTime = new Map<number, number>();
  // Valid types and pages sent so far, per partition. Jobs that re-key by
  // type or by page judge lateness on a repartition partition, whose stream
  // time comes from whatever reached it first: an event is only made late
  // once its partition has sent a valid event of the same type and of the
  // same page, which then reached the same repartition partition before it
  // (one partition's records keep their order there). Otherwise a late event
  // could be the first record of its repartition partition, and no stream
  // time would make it late yet.
  const seen = new Map<number, Set<string>>();
  const idPrefix = `e${(o.seed >>> 0).toString(36)}`;
  const records: GeneratedRecord[] = drafts.map((d, seq) => {
    const event = d.event;
    event.event_id = `${idPrefix}-${seq.toString(36)}`;
    const partition = partitionOf(event.user_id);
    const base = { seq, key: event.user_id, partition };
    if (random.chance(o.invalidFraction)) {
      const { raw, reason } = invalidRecord(event, random.int(0, INVALID_KINDS.length - 1));
      return { ...base, kind: "invalid", raw, invalidReason: reason };
    }
    const st = streamTime.get(partition);
    let keys = seen.get(partition);
    if (random.chance(o.lateFraction) && st !== undefined) {
      const lateTs = event.ts - o.lateByMs;
      const rekeyable = keys?.has(`t:${event.type}`) && keys.has(`p:${event.page}`);
      if (rekeyable && st - lateTs >= o.lateByMs - o.maxDisorderMs) {
        event.ts = lateTs;
        return { ...base, kind: "late", event };
      }
    }
    streamTime.set(partition, Math.max(st ?? event.ts, event.ts));
    if (!keys) {
      keys = new Set();
      seen.set(partition, keys);
    }
    keys.add(`t:${event.type}`).add(`p:${event.page}`);
    return { ...base, kind: "valid", event };
  });
  return { options: o, records };
}
