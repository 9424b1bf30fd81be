export { SluiceError, type SluiceErrorOptions } from "@sluice/schema";
