import diagnostics_channel from "node:diagnostics_channel";

/** `sluice:producer:batch` — one message per topic in each broker request. */
export const batchChannel = diagnostics_channel.channel("sluice:producer:batch");
/** `sluice:producer:invalid` — one message per invalid event. */
export const invalidChannel = diagnostics_channel.channel("sluice:producer:invalid");

export interface BatchMessage {
  topic: string;
  messages: number;
  bytes: number;
  durationMs: number;
  error?: string;
}

export interface InvalidMessage {
  topic: string;
  code: string;
  dlq: boolean;
}
