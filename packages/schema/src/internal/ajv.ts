import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import * as formatsModule from "ajv-formats";
import type { SchemaIssue } from "../schema-error.js";

type FormatsPlugin = (ajv: Ajv2020) => Ajv2020;
const addFormats: FormatsPlugin =
  ((formatsModule as unknown as { default?: FormatsPlugin }).default as FormatsPlugin) ??
  (formatsModule as unknown as FormatsPlugin);

/**
 * Compiles a JSON Schema (draft 2020-12) once, in strict mode, with every
 * format of ajv-formats. One Ajv instance per schema, so two schemas with the
 * same `$id` never collide.
 */
export function compileSchema(schema: object): ValidateFunction {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

/** Converts ajv's errors to Sluice issues. */
export function toIssues(errors: readonly ErrorObject[] | null | undefined): SchemaIssue[] {
  if (!errors) return [];
  return errors.map((e) => ({
    path: e.instancePath,
    message: e.message ?? e.keyword,
    keyword: e.keyword,
    schemaPath: e.schemaPath,
    params: e.params as Record<string, unknown>,
  }));
}
