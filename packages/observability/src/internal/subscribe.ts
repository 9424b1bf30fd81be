import diagnostics_channel from "node:diagnostics_channel";
import { asObject } from "./read.js";

/** Handlers by channel name; each receives the message as an object. */
export type Handlers = Record<string, (msg: Record<string, unknown>) => void>;

/**
 * Subscribes each handler to its channel. A handler never throws into the
 * publisher: a non-object message or a throwing handler calls `onDrop`.
 * Returns the function that unsubscribes them all.
 */
export function subscribeAll(handlers: Handlers, onDrop: (channel: string) => void): () => void {
  const subscriptions: Array<[string, (message: unknown) => void]> = [];
  for (const [channel, handle] of Object.entries(handlers)) {
    const listener = (message: unknown) => {
      try {
        handle(asObject(message));
      } catch {
        try {
          onDrop(channel);
        } catch {
          // nothing more to do
        }
      }
    };
    diagnostics_channel.subscribe(channel, listener);
    subscriptions.push([channel, listener]);
  }
  return () => {
    for (const [channel, listener] of subscriptions) {
      diagnostics_channel.unsubscribe(channel, listener);
    }
  };
}
