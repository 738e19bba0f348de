// A safe pickle reader for the opcodes torch.save uses for a state dict (protocols 2-5): it builds plain
// values and calls only the globals its caller allows, so a file cannot run code. Not a general unpickler:
// no INST/OBJ/NEWOBJ, no extension registry; anything else is refused with the opcode named.

import { UserError } from '../errors.ts';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A global the caller allows; REDUCE calls it with the tuple's items. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: readonly unknown[]) => unknown,
  ) {}
}

export interface UnpickleHooks {
  /** The value for GLOBAL `module.name`: return it, or throw to refuse. */
  findGlobal(module: string, name: string): unknown;
  /** The value for a persistent id (BINPERSID). */
  persistentLoad(pid: unknown): unknown;
}

/**
 * Runs the pickle program in `bytes`. Python tuples become frozen arrays, lists arrays, dicts Maps,
 * None null, ints and floats numbers (an int beyond 2^53 is an error), bytes Uint8Arrays.
 */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks, source: string): unknown {
  return new Machine(bytes, hooks, source).run();
}

class Machine {
  private pos = 0;
  private stack: unknown[] = [];
  private marks: number[] = [];
  private memo = new Map<number, unknown>();
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly hooks: UnpickleHooks,
    private readonly source: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): unknown {
    for (;;) {
      const at = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: this.u8(); break; // PROTO
        case 0x95: this.take(8); break; // FRAME: framing is only a hint for buffered readers
        case 0x2e: return this.finish(); // STOP
        case 0x28: this.marks.push(this.stack.length); break; // MARK
        case 0x30: this.pop(); break; // POP
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.push(this.top()); break; // DUP
        case 0x7d: this.push(new Map()); break; // EMPTY_DICT
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x29: this.push(Object.freeze([])); break; // EMPTY_TUPLE
        case 0x64: this.push(this.pairsToMap(this.popMark(), new Map())); break; // DICT
        case 0x6c: this.push(this.popMark()); break; // LIST
        case 0x74: this.push(Object.freeze(this.popMark())); break; // TUPLE
        case 0x85: this.push(Object.freeze(this.popN(1))); break; // TUPLE1
        case 0x86: this.push(Object.freeze(this.popN(2))); break; // TUPLE2
        case 0x87: this.push(Object.freeze(this.popN(3))); break; // TUPLE3
        case 0x73: this.pairsToMap(this.popN(2), this.top()); break; // SETITEM
        case 0x75: { const items = this.popMark(); this.pairsToMap(items, this.top()); break; } // SETITEMS
        case 0x61: { const item = this.pop(); this.list(this.top(), at).push(item); break; } // APPEND
        case 0x65: { const items = this.popMark(); this.list(this.top(), at).push(...items); break; } // APPENDS
        case 0x58: this.push(this.text(this.view.getUint32(this.advance(4), true))); break; // BINUNICODE
        case 0x8c: this.push(this.text(this.u8())); break; // SHORT_BINUNICODE
        case 0x8d: this.push(this.text(this.u64())); break; // BINUNICODE8
        case 0x42: this.push(this.take(this.view.getUint32(this.advance(4), true)).slice()); break; // BINBYTES
        case 0x43: this.push(this.take(this.u8()).slice()); break; // SHORT_BINBYTES
        case 0x4a: this.push(this.view.getInt32(this.advance(4), true)); break; // BININT
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.view.getUint16(this.advance(2), true)); break; // BININT2
        case 0x8a: this.push(this.long(this.u8())); break; // LONG1
        case 0x8b: this.push(this.long(this.view.getInt32(this.advance(4), true))); break; // LONG4
        case 0x47: this.push(this.view.getFloat64(this.advance(8), false)); break; // BINFLOAT (big-endian)
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x71: this.memo.set(this.u8(), this.top()); break; // BINPUT
        case 0x72: this.memo.set(this.view.getUint32(this.advance(4), true), this.top()); break; // LONG_BINPUT
        case 0x94: this.memo.set(this.memo.size, this.top()); break; // MEMOIZE
        case 0x68: this.push(this.recall(this.u8())); break; // BINGET
        case 0x6a: this.push(this.recall(this.view.getUint32(this.advance(4), true))); break; // LONG_BINGET
        case 0x63: { const module = this.line(); this.push(this.global(module, this.line())); break; } // GLOBAL
        case 0x93: { const name = this.pop(); this.push(this.global(this.pop(), name)); break; } // STACK_GLOBAL
        case 0x52: { const args = this.pop(); this.push(this.reduce(this.pop(), args, at)); break; } // REDUCE
        case 0x62: this.pop(); this.dictAt(at, 'BUILD'); break; // BUILD: a dict's attributes (_metadata), not needed
        case 0x51: this.push(this.hooks.persistentLoad(this.pop())); break; // BINPERSID
        default:
          throw this.fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))}) at byte ${at}`);
      }
    }
  }

  private finish(): unknown {
    if (this.stack.length !== 1 || this.marks.length) throw this.fail('the pickle ends with an unbalanced stack');
    return this.stack[0];
  }

  private global(module: unknown, name: unknown): unknown {
    if (typeof module !== 'string' || typeof name !== 'string') throw this.fail('a global with a non-string name');
    return this.hooks.findGlobal(module, name);
  }

  private reduce(fn: unknown, args: unknown, at: number): unknown {
    if (!(fn instanceof PyCallable)) throw this.fail(`REDUCE at byte ${at} calls something that is not an allowed function`);
    if (!Array.isArray(args)) throw this.fail(`REDUCE at byte ${at} has no argument tuple`);
    return fn.call(args);
  }

  private dictAt(at: number, op: string): void {
    if (!(this.top() instanceof Map)) throw this.fail(`${op} at byte ${at} on something other than a dict`);
  }

  private pairsToMap(items: unknown[], target: unknown): Map<unknown, unknown> {
    if (!(target instanceof Map) || items.length % 2) throw this.fail('SETITEM(S) on something other than a dict');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    return target;
  }

  private list(target: unknown, at: number): unknown[] {
    if (!Array.isArray(target) || Object.isFrozen(target)) throw this.fail(`APPEND at byte ${at} on something other than a list`);
    return target;
  }

  private long(n: number): number {
    if (n < 0) throw this.fail('negative LONG length');
    const b = this.take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw this.fail(`integer ${v} is too large`);
    return Number(v);
  }

  private recall(i: number): unknown {
    if (!this.memo.has(i)) throw this.fail(`memo slot ${i} is read before it is written`);
    return this.memo.get(i);
  }

  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) throw this.fail('no MARK on the stack');
    return this.stack.splice(mark);
  }

  private popN(n: number): unknown[] {
    if (this.stack.length - n < (this.marks.at(-1) ?? 0)) throw this.fail('stack underflow');
    return this.stack.splice(this.stack.length - n);
  }

  private push(v: unknown): void {
    this.stack.push(v);
  }

  private pop(): unknown {
    return this.popN(1)[0];
  }

  private top(): unknown {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) throw this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private u8(): number {
    return this.bytes[this.advance(1)]!;
  }

  private u64(): number {
    const v = this.view.getBigUint64(this.advance(8), true);
    if (v > BigInt(this.bytes.length)) throw this.fail('a length past the end of the pickle');
    return Number(v);
  }

  private text(n: number): string {
    return UTF8.decode(this.take(n));
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw this.fail('GLOBAL without a newline');
    const s = UTF8.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private take(n: number): Uint8Array {
    return this.bytes.subarray(this.advance(n), this.pos);
  }

  /** Moves past n bytes and returns where they start. */
  private advance(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw this.fail('the pickle ends in the middle of an instruction');
    this.pos = at + n;
    return at;
  }

  private fail(what: string): UserError {
    return new UserError(`${this.source}: ${what}`);
  }
}
