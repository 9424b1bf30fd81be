export { type Duration, parseDuration } from "./duration.js";
export { SluiceError, type SluiceErrorOptions } from "./sluice-error.js";
