// An independent reader of flexible-version request bytes, following the
// protocol's primitive types (not kafkajs's Decoder), for tests of the
// requests Sluice writes by hand.

/** Reads `buf` from its start, one protocol primitive at a time. */
export function byteReader(buf: Buffer) {
  let o = 0;
  const uvarint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[o++] as number;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  const fixed = <T>(bytes: number, read: (at: number) => T): T => {
    o += bytes;
    return read(o - bytes);
  };
  return {
    uvarint,
    /** A COMPACT_NULLABLE_STRING: its byte length + 1, 0 for null. */
    string: () => {
      const n = uvarint();
      if (n === 0) return null;
      return fixed(n - 1, (at) => buf.toString("utf8", at, at + n - 1));
    },
    /** A COMPACT_ARRAY's element count. */
    arrayLength: () => uvarint() - 1,
    int8: () => fixed(1, (at) => buf.readInt8(at)),
    int16: () => fixed(2, (at) => buf.readInt16BE(at)),
    int32: () => fixed(4, (at) => buf.readInt32BE(at)),
    int64: () => fixed(8, (at) => buf.readBigInt64BE(at)),
    /** Bytes not read yet. */
    rest: () => buf.length - o,
  };
}
