// `sluice:job:workers`: runWorkers member events (spawn, ready, exit with
// reason, restart with delay, kill, stop, failed), published only when
// someone listens.
import diagnostics from "node:diagnostics_channel";

const channel = diagnostics.channel("sluice:job:workers");

export function publishWorkersEvent(event: Record<string, unknown>): void {
  if (channel.hasSubscribers) channel.publish(event);
}
