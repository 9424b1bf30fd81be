import type { SessionTruth } from "../generator/ground-truth.js";
import type { EventType, UserEvent } from "../generator/user-event.js";

/** `YYYY-MM-DD` (UTC) of an epoch-ms time: the day partition of every table. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A row of the raw `events` table. */
export interface RawEventRow {
  event_id: string;
  user_id: string;
  type: string;
  page: string;
  ts_ms: number;
  revenue_cents: number;
  event_date: string;
}

/** Maps an event to its `events` row. */
export function rawEventRow(e: UserEvent): RawEventRow {
  return {
    event_id: e.event_id,
    user_id: e.user_id,
    type: e.type,
    page: e.page,
    ts_ms: e.ts,
    revenue_cents: e.revenue_cents ?? 0,
    event_date: utcDay(e.ts),
  };
}

/** Aggregate of one session window. */
export interface SessionValue {
  events: number;
  revenue_cents: number;
  first_ts: number;
  last_ts: number;
}

/** A row of `user_sessions`: the session plus its result identity. */
export interface SessionRow extends SessionTruth {
  emit_seq: number;
  result_id: string;
  day: string;
}

/** Maps a session window result to its `user_sessions` row. */
export function sessionRow(r: {
  key: string;
  value: SessionValue;
  emitSeq: number;
  id: string;
}): SessionRow {
  return {
    user_id: r.key,
    session_start: r.value.first_ts,
    session_end: r.value.last_ts,
    duration_ms: r.value.last_ts - r.value.first_ts,
    events: r.value.events,
    revenue_cents: r.value.revenue_cents,
    emit_seq: r.emitSeq,
    result_id: r.id,
    day: utcDay(r.value.first_ts),
  };
}

/** A row of `event_counts_1m`. */
export interface MinuteCountRow {
  window_start: number;
  type: EventType;
  count: number;
  emit_seq: number;
  day: string;
}

/** Maps a tumbling count result (keyed by event type) to its row. */
export function minuteCountRow(r: {
  key: string;
  windowStart: number;
  value: number;
  emitSeq: number;
}): MinuteCountRow {
  return {
    window_start: r.windowStart,
    type: r.key as EventType,
    count: r.value,
    emit_seq: r.emitSeq,
    day: utcDay(r.windowStart),
  };
}
