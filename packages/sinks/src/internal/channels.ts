import diagnostics from "node:diagnostics_channel";

const batch = diagnostics.channel("sluice:sink:batch");
const retry = diagnostics.channel("sluice:sink:retry");
const buffer = diagnostics.channel("sluice:sink:buffer");
const dlq = diagnostics.channel("sluice:sink:dlq");

export function publishBatch(msg: {
  sink: string;
  name: string;
  rows: number;
  bytes?: number;
  durationMs: number;
  error?: string;
}): void {
  if (batch.hasSubscribers) batch.publish(msg);
}

export function publishRetry(msg: {
  sink: string;
  name: string;
  attempt: number;
  delayMs: number;
  code: string;
}): void {
  if (retry.hasSubscribers) retry.publish(msg);
}

export function publishBuffer(msg: {
  sink: string;
  name: string;
  buffered: number;
  backpressure: boolean;
}): void {
  if (buffer.hasSubscribers) buffer.publish(msg);
}

export function publishDlq(msg: { sink: string; name: string; count: number; code: string }): void {
  if (dlq.hasSubscribers) dlq.publish(msg);
}
