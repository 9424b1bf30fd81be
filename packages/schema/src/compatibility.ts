import { stringify as stableStringify } from "safe-stable-stringify";
import type { JsonSchemaObject } from "./define-schema.js";
import type { BreakingChange } from "./schema-error.js";

/**
 * Compatibility mode of a subject, as in Confluent Schema Registry:
 * `BACKWARD` — readers of the new schema read data written with the previous
 * one; `FORWARD` — readers of the previous schema read data written with the
 * new one; `FULL` — both; `NONE` — no check.
 *
 * @since 0.1.0
 */
export type CompatibilityMode = "BACKWARD" | "FORWARD" | "FULL" | "NONE";

/**
 * Outcome of a compatibility check.
 *
 * @since 0.1.0
 */
export interface CompatibilityResult {
  /** True when no breaking change was found. */
  readonly compatible: boolean;
  /** Each breaking change, with its place in the schema. */
  readonly changes: readonly BreakingChange[];
}

type S = Record<string, unknown>;
type Direction = BreakingChange["breaks"];

const COMPOSITE = ["$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$defs"];

function asObject(v: unknown): S | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as S) : undefined;
}

function typesOf(s: S): Set<string> | undefined {
  const t = s.type;
  if (t === undefined) return undefined;
  return new Set(Array.isArray(t) ? (t as string[]) : [t as string]);
}

function accepts(readerTypes: Set<string> | undefined, writerType: string): boolean {
  if (!readerTypes) return true;
  if (readerTypes.has(writerType)) return true;
  return writerType === "integer" && readerTypes.has("number");
}

function esc(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/**
 * Ways in which data valid under `writer` may be rejected by `reader`.
 * Lenient where JSON Schema evolution is usually meant to be: a property
 * added to an open content model is not flagged.
 */
function readerRejects(reader: S, writer: S, path: string, breaks: Direction): BreakingChange[] {
  const out: BreakingChange[] = [];
  const add = (at: string, kind: string, message: string) =>
    out.push({ path: at || "/", kind, breaks, message });

  // Types: the reader must accept every type the writer may produce.
  const rt = typesOf(reader);
  const wt = typesOf(writer);
  if (rt) {
    if (!wt) add(`${path}/type`, "type-narrowed", `type restricted to ${[...rt].join("|")}`);
    else {
      const lost = [...wt].filter((t) => !accepts(rt, t));
      if (lost.length) {
        add(
          `${path}/type`,
          "type-narrowed",
          `type ${[...wt].join("|")} narrowed to ${[...rt].join("|")} (no longer accepts ${lost.join(", ")})`,
        );
      }
    }
  }

  // Enumerations and constants.
  if (Array.isArray(reader.enum)) {
    const allowed = new Set(reader.enum.map((v) => stableStringify(v)));
    if (!Array.isArray(writer.enum)) {
      add(`${path}/enum`, "enum-added", "an enum now restricts a value that was free");
    } else {
      for (const v of writer.enum) {
        if (!allowed.has(stableStringify(v))) {
          add(`${path}/enum`, "enum-value-removed", `enum value ${JSON.stringify(v)} removed`);
        }
      }
    }
  }
  if ("const" in reader && stableStringify(reader.const) !== stableStringify(writer.const)) {
    add(`${path}/const`, "const-changed", `const is now ${JSON.stringify(reader.const)}`);
  }

  // Numeric and length bounds.
  const lower = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
  const upper = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];
  for (const k of lower) {
    const r = reader[k];
    if (typeof r !== "number") continue;
    const w = writer[k];
    if (typeof w !== "number" || w < r) {
      add(
        `${path}/${k}`,
        "bound-tightened",
        `${k} raised to ${r}${typeof w === "number" ? ` from ${w}` : ""}`,
      );
    }
  }
  for (const k of upper) {
    const r = reader[k];
    if (typeof r !== "number") continue;
    const w = writer[k];
    if (typeof w !== "number" || w > r) {
      add(
        `${path}/${k}`,
        "bound-tightened",
        `${k} lowered to ${r}${typeof w === "number" ? ` from ${w}` : ""}`,
      );
    }
  }
  for (const k of ["pattern", "format", "multipleOf"]) {
    if (reader[k] !== undefined && reader[k] !== writer[k]) {
      add(`${path}/${k}`, `${k}-changed`, `${k} is now ${JSON.stringify(reader[k])}`);
    }
  }
  for (const k of COMPOSITE) {
    if (reader[k] !== undefined && stableStringify(reader[k]) !== stableStringify(writer[k])) {
      add(`${path}/${k}`, "composite-changed", `${k} changed (not analysed; treated as breaking)`);
    }
  }

  // Objects.
  const rProps = asObject(reader.properties) ?? {};
  const wProps = asObject(writer.properties) ?? {};
  const rReq = new Set(Array.isArray(reader.required) ? (reader.required as string[]) : []);
  const wReq = new Set(Array.isArray(writer.required) ? (writer.required as string[]) : []);
  for (const name of rReq) {
    if (!wReq.has(name)) {
      add(
        `${path}/required`,
        "required-added",
        `property '${name}' is required but ${name in wProps ? "was optional" : "did not exist"}`,
      );
    }
  }
  for (const name of wReq) {
    if (!(name in rProps) && !rReq.has(name)) {
      add(
        `${path}/properties/${esc(name)}`,
        "required-property-removed",
        `required property '${name}' removed`,
      );
    }
  }
  for (const [name, ws] of Object.entries(wProps)) {
    const rs = asObject(rProps[name]);
    const w = asObject(ws);
    if (rs && w) {
      out.push(...readerRejects(rs, w, `${path}/properties/${esc(name)}`, breaks));
    } else if (!rs && reader.additionalProperties === false && !wReq.has(name)) {
      add(
        `${path}/properties/${esc(name)}`,
        breaks === "BACKWARD" ? "property-removed" : "property-added-to-closed-object",
        breaks === "BACKWARD"
          ? `property '${name}' removed from a closed object (additionalProperties: false)`
          : `property '${name}' added, but readers of the previous schema reject it (additionalProperties: false)`,
      );
    }
  }
  if (reader.additionalProperties === false && writer.additionalProperties !== false) {
    add(
      `${path}/additionalProperties`,
      "content-model-closed",
      "additionalProperties is now false: extra properties are rejected",
    );
  } else {
    const ra = asObject(reader.additionalProperties);
    const wa = asObject(writer.additionalProperties);
    if (ra) out.push(...readerRejects(ra, wa ?? {}, `${path}/additionalProperties`, breaks));
  }

  // Arrays.
  const ri = asObject(reader.items);
  if (ri) out.push(...readerRejects(ri, asObject(writer.items) ?? {}, `${path}/items`, breaks));
  return out;
}

/**
 * Lists the breaking changes between two versions of a JSON Schema under a
 * compatibility mode. Adding an optional property is compatible; removing a
 * required property, tightening a type or bound, closing an object or
 * removing an enum value is not.
 *
 * @param previous - the latest registered version
 * @param next - the candidate version
 * @param mode - compatibility mode
 * @defaultValue mode `'BACKWARD'`
 * @returns whether compatible, and every breaking change
 * @example
 * ```ts
 * const r = checkCompatibility(v1, v2, 'BACKWARD');
 * if (!r.compatible) console.log(r.changes.map((c) => `${c.path}: ${c.message}`));
 * ```
 * @since 0.1.0
 */
export function checkCompatibility(
  previous: JsonSchemaObject,
  next: JsonSchemaObject,
  mode: CompatibilityMode = "BACKWARD",
): CompatibilityResult {
  const prev = previous as S;
  const nxt = next as S;
  const changes: BreakingChange[] = [];
  if (mode === "BACKWARD" || mode === "FULL")
    changes.push(...readerRejects(nxt, prev, "", "BACKWARD"));
  if (mode === "FORWARD" || mode === "FULL")
    changes.push(...readerRejects(prev, nxt, "", "FORWARD"));
  return { compatible: changes.length === 0, changes };
}
