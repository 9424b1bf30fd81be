import type { GeneratedRecord } from "./generate.js";
import type { EventType, UserEvent } from "./user-event.js";

/** Window settings of the three reference jobs. */
export interface JobSettings {
  /** Inactivity gap closing a user's session. @defaultValue 30 minutes */
  sessionGapMs: number;
  /** Size of the per-type tumbling windows. @defaultValue 1 minute */
  tumblingMs: number;
  /** Size of the top-pages hopping windows. @defaultValue 5 minutes */
  hopSizeMs: number;
  /** Advance of the top-pages hopping windows. @defaultValue 1 minute */
  hopAdvanceMs: number;
}

export const defaultJobSettings: JobSettings = {
  sessionGapMs: 30 * 60_000,
  tumblingMs: 60_000,
  hopSizeMs: 5 * 60_000,
  hopAdvanceMs: 60_000,
};

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
 * Computes the exact results of the three reference jobs from the generator's
 * ledger: only `valid` records count (late ones are beyond grace, invalid ones
 * go to the dead-letter topic). Windows are aligned to the epoch.
 *
 * @param records - the generated records (any order)
 * @param settings - window sizes; defaults to the reference jobs'
 * @returns sessions, per-minute counts per type and page views per hopping window
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
  };
}
