export * from "./generate.js";
export * from "./ground-truth.js";
export * from "./partitioner.js";
export * from "./random.js";
export * from "./user-event.js";
