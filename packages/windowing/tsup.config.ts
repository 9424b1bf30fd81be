import { defineConfig } from "tsup";

export default defineConfig({
  // `internal/worker-entry` is the process entry of runWorkers members; it is
  // not a public import path, but must exist next to index.js in dist.
  entry: { index: "src/index.ts", "internal/worker-entry": "src/internal/worker-entry.ts" },
  format: ["esm", "cjs"],
  dts: { entry: "src/index.ts" },
  sourcemap: true,
  clean: true,
  target: "node20",
  // import.meta.url (used to find the member entry) in the CommonJS build too
  shims: true,
});
