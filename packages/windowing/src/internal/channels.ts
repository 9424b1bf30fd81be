// diagnostics_channel publishing (only when someone listens). Names and
// shapes are the ones agreed across Sluice packages.
import diagnostics from "node:diagnostics_channel";

const names = [
  "records",
  "lag",
  "late",
  "dlq",
  "windows",
  "stream-time",
  "checkpoint",
  "commit",
  "commit-refused",
  "restore",
  "rebalance",
  "ready",
] as const;

type Name = (typeof names)[number];

const channels = Object.fromEntries(
  names.map((n) => [n, diagnostics.channel(`sluice:job:${n}`)]),
) as Record<Name, diagnostics.Channel>;

export function publish(name: Name, message: () => Record<string, unknown>): void {
  const ch = channels[name];
  if (ch.hasSubscribers) ch.publish(message());
}
