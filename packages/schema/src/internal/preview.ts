/** Short printable form of an offending value for error messages. */
export function preview(value: unknown, max = 200): string {
  let text: string;
  try {
    text =
      typeof value === "string"
        ? JSON.stringify(value)
        : value instanceof Uint8Array
          ? `<${value.byteLength} bytes>`
          : (JSON.stringify(value) ?? String(value));
  } catch {
    // JSON.stringify and String() both recurse: a hostile, deeply nested value
    // overflows the stack in either, so fall back to the type tag alone.
    try {
      text = String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
