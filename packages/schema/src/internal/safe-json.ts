import secureJsonParse from "secure-json-parse";

const parse =
  (secureJsonParse as unknown as { parse?: typeof secureJsonParse }).parse ?? secureJsonParse;

/**
 * `JSON.parse` that refuses prototype-poisoning keys (`__proto__`, and
 * `constructor.prototype`) instead of letting them reach user code. Throws a
 * `SyntaxError` for bad JSON and for poisoned keys alike.
 */
export function safeParse(text: string): unknown {
  return parse(text, null, { protoAction: "error", constructorAction: "error" });
}
