// The safe pickle reader: the opcodes torch.save uses, pickles written by Python, and refusal of any global
// or opcode that could run code.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { PyCallable, unpickle } from '../../../src/formats/pickle.ts';
import { TorchFile } from '../../../src/formats/torch-pickle.ts';
import { pk, str, writeTorchZip } from './pickle-bytes.ts';
import { needPython, runPython } from './python.ts';
import { tempDir } from './tmp.ts';

const refuseAll = {
  findGlobal: (m: string, n: string) => {
    throw new UserError(`no ${m}.${n}`);
  },
  persistentLoad: () => {
    throw new UserError('no persistent ids');
  },
};

test('the opcodes of protocol 2 build plain values: dicts, lists, tuples, ints, floats, memo', () => {
  const program = pk(
    0x80, 2, 0x7d, 0x71, 0, 0x28, // PROTO 2, EMPTY_DICT, BINPUT 0, MARK
    str('ints'), 0x28, 0x4b, 255, 0x4d, 0x34, 0x12, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x8a, 2, 0x00, 0x80, 0x8a, 0, 0x74, // (255, 0x1234, -1, -32768, 0)
    str('float'), 0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, // BINFLOAT 1.5 (big-endian)
    str('list'), 0x5d, 0x71, 1, 0x28, 0x88, 0x89, 0x4e, 0x65, 0x4b, 7, 0x61, // [True, False, None] + APPEND 7
    str('tuple'), 0x4b, 1, 0x4b, 2, 0x86, // TUPLE2 (1, 2)
    str('t1'), 0x29, 0x85, // TUPLE1 of EMPTY_TUPLE
    str('again'), 0x68, 1, // BINGET 1: the same list
    0x75, 0x2e, // SETITEMS, STOP
  );
  const result = unpickle(program, refuseAll, 'test') as Map<string, unknown>;
  assert.deepEqual([...result.keys()], ['ints', 'float', 'list', 'tuple', 't1', 'again']);
  assert.deepEqual(result.get('ints'), [255, 0x1234, -1, -32768, 0]);
  assert.equal(result.get('float'), 1.5);
  assert.deepEqual(result.get('list'), [true, false, null, 7]);
  assert.deepEqual(result.get('tuple'), [1, 2]);
  assert.ok(Object.isFrozen(result.get('tuple')));
  assert.deepEqual(result.get('t1'), [[]]);
  assert.equal(result.get('again'), result.get('list'), 'memo returns the same object');
});

test('pickles written by Python itself (protocols 2 and 4) read the same', (t) => {
  const python = needPython(t, 'pickle');
  if (!python) return;
  for (const protocol of [2, 4]) {
    const hex = runPython(python, `import pickle, collections, sys
v = {'a': [1, -2, 3.25, None, True], 'b': (2**40, -2**40, 'ünï'), 'c': collections.OrderedDict([('x', 1)]), 'd': b'\\x00\\x01', 'e': [], 'f': ('s',) * 3}
sys.stdout.write(pickle.dumps(v, protocol=${protocol}).hex())`);
    const value = unpickle(Buffer.from(hex, 'hex'), {
      findGlobal: (m, n) => {
        if (`${m}.${n}` === 'collections.OrderedDict') return new PyCallable('OrderedDict', () => new Map());
        if (`${m}.${n}` === '_codecs.encode') return new PyCallable('encode', ([s]) => Buffer.from(s as string, 'latin1'));
        throw new UserError(`${m}.${n}`);
      },
      persistentLoad: refuseAll.persistentLoad,
    }, 'python') as Map<string, unknown>;
    assert.deepEqual(value.get('a'), [1, -2, 3.25, null, true]);
    assert.deepEqual(value.get('b'), [2 ** 40, -(2 ** 40), 'ünï']);
    assert.deepEqual([...(value.get('c') as Map<string, number>)], [['x', 1]]);
    assert.deepEqual([...(value.get('d') as Uint8Array)], [0, 1]);
    assert.deepEqual(value.get('e'), []);
    assert.deepEqual(value.get('f'), ['s', 's', 's']);
  }
});

test('a torch file whose pickle names any other global is refused before anything is called', async (t) => {
  const dir = tempDir(t);
  const attacks: [string, Uint8Array, string][] = [
    ['os.system', pk(0x80, 2, 'cos\nsystem\n', str('touch /tmp/pwned'), 0x85, 0x52, 0x2e), 'os.system'],
    ['posix.system', pk(0x80, 2, 'cposix\nsystem\n', str('id'), 0x85, 0x52, 0x2e), 'posix.system'],
    ['builtins.eval via STACK_GLOBAL', pk(0x80, 4, 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, 0x2e), 'builtins.eval'],
    ['torch.load', pk(0x80, 2, 'ctorch\nload\n', 0x2e), 'torch.load'],
    ['nested in a dict', pk(0x80, 2, 0x7d, str('w'), 'c__builtin__\nopen\n', 0x73, 0x2e), '__builtin__.open'],
  ];
  for (const [name, pickle, qualname] of attacks) {
    const path = join(dir, `${name}.bin`);
    await writeTorchZip(path, pickle, {});
    assert.throws(
      () => TorchFile.open(path),
      (e: Error) => e instanceof UserError && e.message.startsWith(`refusing to load ${qualname} from ${path}`) && e.message.includes('it could run code'),
      name,
    );
  }
});

test('opcodes outside the safe subset, and misuse of allowed ones, are refused', () => {
  const cases: [Uint8Array, RegExp][] = [
    [pk(0x80, 2, 'ios\nsystem\n', 0x2e), /unsupported pickle opcode 0x69 \("i"\) at byte 2/], // INST
    [pk(0x80, 2, 0x81, 0x2e), /unsupported pickle opcode 0x81/], // NEWOBJ
    [pk(0x80, 2, str('x'), 0x29, 0x52, 0x2e), /REDUCE at byte 9 calls something that is not an allowed function/],
    [pk(0x80, 2, 0x68, 3, 0x2e), /memo slot 3 is read before it is written/],
    [pk(0x80, 2, 0x30, 0x2e), /stack underflow/],
    [pk(0x80, 2, 0x58, 0xff, 0xff, 0, 0, 'ab'), /ends in the middle of an instruction/],
    [pk(0x80, 2, 0x4b, 1, 0x4b, 2, 0x2e), /unbalanced stack/],
    [pk(0x80, 2, 0x5d, 0x4b, 1, 0x4b, 2, 0x73, 0x2e), /SETITEM\(S\) on something other than a dict/],
  ];
  for (const [program, message] of cases) {
    assert.throws(() => unpickle(program, refuseAll, 'evil.pkl'), (e: Error) => e instanceof UserError && e.message.startsWith('evil.pkl: ') && message.test(e.message), String(message));
  }
});
