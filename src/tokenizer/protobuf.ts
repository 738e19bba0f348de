// A minimal reader for the protobuf wire format: enough to walk a SentencePiece ModelProto field by field.
// Not a general protobuf library: no schemas, no writing, no groups.

export const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

export interface Field {
  number: number;
  wireType: WireType;
  /** Varint fields: the value's low 32 bits as unsigned (int32 callers apply `| 0`). */
  varint: number;
  /** Fixed32 fields: the float32 value. */
  float: number;
  /** Length-delimited fields: the payload (a view, not a copy). */
  bytes: Uint8Array;
}

/** Calls `visit` for every field of one message, in order. `what` names the message in errors. */
export function readFields(buf: Uint8Array, what: string, visit: (field: Field) => void): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const field: Field = { number: 0, wireType: WireType.Varint, varint: 0, float: 0, bytes: buf.subarray(0, 0) };
  let pos = 0;

  const readVarint = (): number => {
    let low = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= buf.length) throw new Error(`${what}: truncated varint at byte ${pos}`);
      const b = buf[pos++]!;
      if (shift < 32) low = (low | ((b & 0x7f) << shift)) >>> 0;
      if (b < 0x80) return low;
    }
    throw new Error(`${what}: varint longer than 10 bytes at byte ${pos}`);
  };

  while (pos < buf.length) {
    const tag = readVarint();
    field.number = tag >>> 3;
    field.wireType = tag & 7;
    switch (field.wireType) {
      case WireType.Varint:
        field.varint = readVarint();
        break;
      case WireType.Fixed64:
        pos += 8;
        break;
      case WireType.LengthDelimited: {
        const length = readVarint();
        if (pos + length > buf.length) throw new Error(`${what}: field ${field.number} runs past the end`);
        field.bytes = buf.subarray(pos, pos + length);
        pos += length;
        break;
      }
      case WireType.Fixed32:
        field.float = view.getFloat32(pos, true);
        pos += 4;
        break;
      default:
        throw new Error(`${what}: unsupported wire type ${field.wireType} at byte ${pos}`);
    }
    if (pos > buf.length) throw new Error(`${what}: truncated field ${field.number}`);
    visit(field);
  }
}
