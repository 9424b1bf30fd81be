import type { GeneratedRecord } from "./generate.js";
import type { EventType, UserEvent } from "./user-event.js";

/** Window and pattern settings of the reference jobs. */
export interface JobSettings {
  /** Inactivity gap closing a user's session. @defaultValue 30 minutes */
  sessionGapMs: number;
  /** Size of the per-type tumbling windows. @defaultValue 1 minute */
  tumblingMs: number;
  /** Size of the top-pages hopping windows. @defaultValue 5 minutes */
  hopSizeMs: number;
  /** Advance of the top-pages hopping windows. @defaultValue 1 minute */
  hopAdvanceMs: number;
  /**
   * Funnel bound: the cart and the purchase must follow the page view within
   * this time (counted from the view); a cart with no purchase by then is
   * abandoned. @defaultValue 30 minutes
   */
  funnelWithinMs: number;
  /**
   * Grace of the funnel jobs: an event more than this behind its partition's
   * stream time is late and ignored. @defaultValue 30 seconds
   */
  funnelGraceMs: number;
}

/** The reference jobs' settings. */
export const defaultJobSettings: JobSettings = {
  sessionGapMs: 30 * 60_000,
  tumblingMs: 60_000,
  hopSizeMs: 5 * 60_000,
  hopAdvanceMs: 60_000,
  funnelWithinMs: 30 * 60_000,
  funnelGraceMs: 30_000,
};

/** The two funnel outcomes: view → cart → purchase, or view → cart and no purchase in time. */
export type FunnelOutcome = "converted" | "abandoned";

/** One funnel match: the user's page view, cart and (when converted) purchase. */
export interface FunnelMatchTruth {
  user_id: string;
  outcome: FunnelOutcome;
  /** Event time of the page view that started the match, epoch ms. */
  view_ts: number;
  cart_ts: number;
  /** Event time of the purchase; 0 when abandoned. */
  purchase_ts: number;
  /** Revenue of the purchase; 0 when abandoned. */
  revenue_cents: number;
}

/** The funnel of one UTC hour (bucketed by the page view's time for matches, by event time for events). */
export interface FunnelHourTruth {
  /** Start of the hour, epoch ms. */
  hour: number;
  /** On-time page views, add-to-carts and purchases of the hour. */
  views: number;
  carts: number;
  purchases: number;
  /** Matches whose page view falls in the hour. */
  converted: number;
  abandoned: number;
  /** Revenue of the converted matches. */
  revenue_cents: number;
}

/** One user session: events no more than the gap apart. */
export interface SessionTruth {
  user_id: string;
  /** Event time of the first event, epoch ms. */
  session_start: number;
  /** Event time of the last event, epoch ms. */
  session_end: number;
  duration_ms: number;
  events: number;
  revenue_cents: number;
}

/** Events of one type in one tumbling window. */
export interface MinuteCountTruth {
  window_start: number;
  type: EventType;
  count: number;
}

/** Views of one page in one hopping window. */
export interface PageWindowTruth {
  window_start: number;
  window_end: number;
  page: string;
  count: number;
}

/** What the pipeline must produce for a generated stream. */
export interface GroundTruth {
  settings: JobSettings;
  totals: {
    records: number;
    valid: number;
    late: number;
    invalid: number;
    purchases: number;
    revenueCents: number;
    users: number;
    sessions: number;
  };
  /** Sorted by user, then start. */
  sessions: SessionTruth[];
  /** Sorted by window, then type. */
  minuteCounts: MinuteCountTruth[];
  /** Sorted by window, then count descending, then page. */
  pageWindows: PageWindowTruth[];
  funnel: {
    /** Every match, sorted by user, view time, then outcome. */
    matches: FunnelMatchTruth[];
    /** Every hour with an on-time event or a match, in order. */
    hours: FunnelHourTruth[];
    /** Events the funnel jobs drop as late (more than `funnelGraceMs` behind stream time). */
    late: number;
  };
}

/** Compares `(count desc, page asc)`: the leaderboard order. */
export function byCountThenPage(
  a: { page: string; count: number },
  b: { page: string; count: number },
): number {
  return b.count - a.count || (a.page < b.page ? -1 : a.page > b.page ? 1 : 0);
}

/** The `n` most viewed pages of the hopping window starting at `windowStart`. */
export function topPages(
  truth: GroundTruth,
  windowStart: number,
  n: number,
): Array<{ page: string; count: number }> {
  return truth.pageWindows
    .filter((w) => w.window_start === windowStart)
    .map(({ page, count }) => ({ page, count }))
    .sort(byCountThenPage)
    .slice(0, n);
}

/**
 * Computes the exact results of the reference jobs from the generator's
 * ledger: only `valid` records count (late ones are beyond grace, invalid ones
 * go to the dead-letter topic). Windows are aligned to the epoch. The funnel
 * is computed by brute force with its own lateness rule (see
 * {@link computeFunnelTruth}), so it needs `records` in send order.
 *
 * @param records - the generated records, in send order
 * @param settings - window sizes and funnel bound; defaults to the reference jobs'
 * @returns sessions, per-minute counts per type, page views per hopping window and the funnel
 */
export function computeGroundTruth(
  records: readonly GeneratedRecord[],
  settings: Partial<JobSettings> = {},
): GroundTruth {
  const s = { ...defaultJobSettings, ...settings };
  const valid: UserEvent[] = [];
  let late = 0;
  let invalid = 0;
  for (const r of records) {
    if (r.kind === "valid") valid.push(r.event!);
    else if (r.kind === "late") late++;
    else invalid++;
  }

  // Sessions per user.
  const byUser = new Map<string, UserEvent[]>();
  for (const e of valid) {
    let list = byUser.get(e.user_id);
    if (!list) {
      list = [];
      byUser.set(e.user_id, list);
    }
    list.push(e);
  }
  const sessions: SessionTruth[] = [];
  for (const user of [...byUser.keys()].sort()) {
    const list = byUser.get(user)!.sort((a, b) => a.ts - b.ts);
    let cur: SessionTruth | undefined;
    for (const e of list) {
      if (!cur || e.ts - cur.session_end > s.sessionGapMs) {
        cur = {
          user_id: user,
          session_start: e.ts,
          session_end: e.ts,
          duration_ms: 0,
          events: 0,
          revenue_cents: 0,
        };
        sessions.push(cur);
      }
      cur.session_end = e.ts;
      cur.duration_ms = cur.session_end - cur.session_start;
      cur.events++;
      cur.revenue_cents += e.revenue_cents ?? 0;
    }
  }

  // Tumbling counts per type, and hopping page views.
  const minute = new Map<string, MinuteCountTruth>();
  const pageWin = new Map<string, PageWindowTruth>();
  let purchases = 0;
  let revenueCents = 0;
  for (const e of valid) {
    if (e.type === "purchase") {
      purchases++;
      revenueCents += e.revenue_cents ?? 0;
    }
    const ws = Math.floor(e.ts / s.tumblingMs) * s.tumblingMs;
    const mk = `${ws}|${e.type}`;
    const m = minute.get(mk);
    if (m) m.count++;
    else minute.set(mk, { window_start: ws, type: e.type, count: 1 });

    const last = Math.floor(e.ts / s.hopAdvanceMs) * s.hopAdvanceMs;
    for (let start = last; start > e.ts - s.hopSizeMs; start -= s.hopAdvanceMs) {
      const pk = `${start}|${e.page}`;
      const p = pageWin.get(pk);
      if (p) p.count++;
      else {
        pageWin.set(pk, {
          window_start: start,
          window_end: start + s.hopSizeMs,
          page: e.page,
          count: 1,
        });
      }
    }
  }
  const minuteCounts = [...minute.values()].sort(
    (a, b) => a.window_start - b.window_start || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0),
  );
  const pageWindows = [...pageWin.values()].sort(
    (a, b) => a.window_start - b.window_start || byCountThenPage(a, b),
  );
  return {
    settings: s,
    totals: {
      records: records.length,
      valid: valid.length,
      late,
      invalid,
      purchases,
      revenueCents,
      users: byUser.size,
      sessions: sessions.length,
    },
    sessions,
    minuteCounts,
    pageWindows,
    funnel: computeFunnelTruth(records, s),
  };
}

const HOUR_MS = 3_600_000;

/** Start of the UTC hour of an epoch-ms time. */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/**
 * The funnel by brute force, independent of the pattern operator:
 *
 * 1. Lateness, per partition in send order: stream time is the largest event
 *    time seen so far (the event's own included); an event more than
 *    `funnelGraceMs` behind it is late and ignored. Invalid records never
 *    reach the jobs.
 * 2. Per user, the on-time events in event-time order (send order among
 *    equal times), one open match at a time: a `page_view` opens it, the next
 *    `add_to_cart` extends it, other events are skipped. A match whose page
 *    view is more than `funnelWithinMs` before the current event is over
 *    first: with a cart it counts as abandoned, otherwise it is dropped.
 *    After the cart, a `purchase` (within the bound) converts the match and
 *    closes it. At the end of the stream every open match is over.
 *
 * @param records - the generated records, in send order
 * @param settings - funnel bound and grace
 * @returns matches, per-hour funnel and the late count
 */
export function computeFunnelTruth(
  records: readonly GeneratedRecord[],
  settings: Pick<JobSettings, "funnelWithinMs" | "funnelGraceMs">,
): GroundTruth["funnel"] {
  const { funnelWithinMs: within, funnelGraceMs: grace } = settings;
  const streamTime = new Map<number, number>();
  const byUser = new Map<string, UserEvent[]>();
  const hours = new Map<number, FunnelHourTruth>();
  const hour = (ms: number) => {
    const h = hourOf(ms);
    let row = hours.get(h);
    if (!row) {
      row = {
        hour: h,
        views: 0,
        carts: 0,
        purchases: 0,
        converted: 0,
        abandoned: 0,
        revenue_cents: 0,
      };
      hours.set(h, row);
    }
    return row;
  };
  let late = 0;
  for (const r of records) {
    const e = r.event;
    if (r.kind === "invalid" || !e) continue;
    const st = Math.max(streamTime.get(r.partition) ?? e.ts, e.ts);
    streamTime.set(r.partition, st);
    if (st > e.ts + grace) {
      late++;
      continue;
    }
    let list = byUser.get(e.user_id);
    if (!list) {
      list = [];
      byUser.set(e.user_id, list);
    }
    list.push(e);
    if (e.type === "page_view") hour(e.ts).views++;
    else if (e.type === "add_to_cart") hour(e.ts).carts++;
    else if (e.type === "purchase") hour(e.ts).purchases++;
  }

  const matches: FunnelMatchTruth[] = [];
  const emit = (outcome: FunnelOutcome, view: UserEvent, cart: UserEvent, buy?: UserEvent) => {
    matches.push({
      user_id: view.user_id,
      outcome,
      view_ts: view.ts,
      cart_ts: cart.ts,
      purchase_ts: buy?.ts ?? 0,
      revenue_cents: buy?.revenue_cents ?? 0,
    });
    const h = hour(view.ts);
    h[outcome]++;
    if (buy) h.revenue_cents += buy.revenue_cents ?? 0;
  };
  for (const list of byUser.values()) {
    const events = list.slice().sort((a, b) => a.ts - b.ts); // stable: send order among ties
    for (const outcome of ["converted", "abandoned"] as const) {
      let view: UserEvent | undefined;
      let cart: UserEvent | undefined;
      for (const e of events) {
        if (view && e.ts - view.ts > within) {
          if (cart && outcome === "abandoned") emit(outcome, view, cart);
          view = cart = undefined;
        }
        if (!view) {
          if (e.type === "page_view") view = e;
        } else if (!cart) {
          if (e.type === "add_to_cart") cart = e;
        } else if (e.type === "purchase") {
          if (outcome === "converted") emit(outcome, view, cart, e);
          view = cart = undefined;
        }
      }
      if (view && cart && outcome === "abandoned") emit(outcome, view, cart);
    }
  }
  matches.sort(
    (a, b) =>
      (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0) ||
      a.view_ts - b.view_ts ||
      (a.outcome < b.outcome ? -1 : a.outcome > b.outcome ? 1 : 0),
  );
  return { matches, hours: [...hours.values()].sort((a, b) => a.hour - b.hour), late };
}
