import { channel } from "node:diagnostics_channel";

/** `sluice:state:stats` `{ store, partition?, keys, bytes, cacheHits, cacheMisses }`. */
export const statsChannel = channel("sluice:state:stats");
