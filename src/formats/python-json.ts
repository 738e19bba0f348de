// JSON text as Python's json.dumps(value, indent=2, sort_keys=True) writes it, which is how PEFT writes
// adapter_config.json: keys sorted, non-ASCII escaped, and floats that happen to be whole keep their ".0"
// (for the keys named as floats). Not a parser.

/** Python-style JSON of `value`; numbers under the keys in `floatKeys` are written as floats. */
export function pythonJson(value: unknown, floatKeys: ReadonlySet<string> = new Set()): string {
  return dump(value, floatKeys, '', false);
}

function dump(value: unknown, floatKeys: ReadonlySet<string>, indent: string, asFloat: boolean): string {
  if (typeof value === 'number' && asFloat && Number.isInteger(value)) return value.toFixed(1);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const inner = indent + '  ';
    return `[\n${value.map((v) => inner + dump(v, floatKeys, inner, asFloat)).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    if (keys.length === 0) return '{}';
    const inner = indent + '  ';
    const items = keys.map((k) => `${inner}${asciiJson(k)}: ${dump((value as Record<string, unknown>)[k], floatKeys, inner, floatKeys.has(k))}`);
    return `{\n${items.join(',\n')}\n${indent}}`;
  }
  return asciiJson(value ?? null);
}

function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
