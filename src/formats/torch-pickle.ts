// Reading PyTorch's torch.save zip files (pytorch_model.bin, adapter_model.bin, consolidated.00.pth): the
// pickle in `<top>/data.pkl` is run with only the tensor-rebuilding globals allowed, giving each tensor's
// dtype, shape, stride and storage record; a tensor's bytes are read from `<top>/data/<key>` on demand.
// Not a writer (see torch-write.ts); not the legacy (pre-1.6) tar format; not TorchScript.

import { closeSync, openSync, readSync } from 'node:fs';
import { numel } from '../engine/tensor.ts';
import { UserError } from '../errors.ts';
import { ITEM_SIZE, viewAs } from './host-tensor.ts';
import type { HostTensor, StorageDType } from './host-tensor.ts';
import { PyCallable, unpickle } from './pickle.ts';
import type { TensorInfo } from './safetensors.ts';
import { ZipReader } from './zip.ts';

/** Where a tensor's elements are: element `storageOffset + Σ index[d] * stride[d]` of storage `storageKey`. */
export interface TorchTensorRecord {
  dtype: StorageDType;
  shape: number[];
  stride: number[];
  storageKey: string;
  storageOffset: number;
}

/** The storage classes torch.save names, by the dtype they hold. */
const STORAGE_DTYPES: Readonly<Record<string, StorageDType>> = {
  FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

class StorageClass {
  constructor(readonly dtype: StorageDType) {}
}

class StorageRef {
  constructor(readonly dtype: StorageDType, readonly key: string, readonly numel: number) {}
}

class TensorRef {
  constructor(readonly record: TorchTensorRecord) {}
}

export class TorchFile {
  private constructor(
    readonly path: string,
    private readonly zip: ZipReader,
    private readonly top: string,
    private readonly tensors: ReadonlyMap<string, TorchTensorRecord>,
  ) {}

  static open(path: string): TorchFile {
    refuseLegacyFormat(path);
    const zip = ZipReader.open(path);
    try {
      const top = topFolder(zip);
      checkByteOrder(zip, top);
      const tensors = readStateDict(zip, top);
      return new TorchFile(path, zip, top, tensors);
    } catch (err) {
      zip.close();
      throw err;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const r = this.record(name);
    return { dtype: r.dtype, shape: [...r.shape] };
  }

  record(name: string): TorchTensorRecord {
    const r = this.tensors.get(name);
    if (!r) throw new UserError(`${this.path} has no tensor named "${name}"`);
    return r;
  }

  /** One tensor, contiguous, in a buffer of its own; only its storage bytes are read. */
  read(name: string): HostTensor {
    const r = this.record(name);
    const item = ITEM_SIZE[r.dtype];
    const count = numel(r.shape);
    const entry = `${this.top}/data/${r.storageKey}`;
    let bytes: Uint8Array;
    if (count === 0) {
      bytes = new Uint8Array(0);
    } else if (isContiguous(r.shape, r.stride)) {
      bytes = this.zip.readPart(entry, r.storageOffset * item, count * item);
    } else {
      const span = lastIndex(r.shape, r.stride) + 1;
      bytes = gather(this.zip.readPart(entry, r.storageOffset * item, span * item), r.shape, r.stride, item);
    }
    return { dtype: r.dtype, shape: [...r.shape], data: viewAs(r.dtype, bytes.buffer, bytes.byteOffset, count) };
  }

  close(): void {
    this.zip.close();
  }
}

/** Every tensor of a (small) file, in the order of its state dict. */
export function readTorchFile(path: string): Map<string, HostTensor> {
  const file = TorchFile.open(path);
  try {
    return new Map(file.names().map((name) => [name, file.read(name)]));
  } finally {
    file.close();
  }
}

function refuseLegacyFormat(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new UserError(`cannot open ${path}: ${(err as Error).message}`);
  }
  const magic = new Uint8Array(4);
  const n = readSync(fd, magic, 0, 4, 0);
  closeSync(fd);
  if (n >= 2 && magic[0] === 0x80) {
    throw new UserError(`${path} is in the legacy torch.save format of PyTorch < 1.6: load and save it again with a newer PyTorch`);
  }
  if (n < 4 || magic[0] !== 0x50 || magic[1] !== 0x4b) {
    throw new UserError(`${path} is not a torch.save file (it is not a zip archive)`);
  }
}

/** The archive's single top folder (archive/, pytorch_model/, ...), found by its data.pkl. */
function topFolder(zip: ZipReader): string {
  const tops = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n)).map((n) => n.slice(0, -'/data.pkl'.length));
  if (tops.length !== 1) {
    throw new UserError(`${zip.path} is not a torch.save file: expected one <folder>/data.pkl, found ${tops.length}`);
  }
  return tops[0]!;
}

function checkByteOrder(zip: ZipReader, top: string): void {
  if (!zip.names().includes(`${top}/byteorder`)) return; // written since PyTorch 1.12; before that, little-endian
  const order = new TextDecoder().decode(zip.read(`${top}/byteorder`));
  if (order !== 'little') throw new UserError(`${zip.path} was saved on a ${order}-endian machine: only little-endian files are read`);
}

function readStateDict(zip: ZipReader, top: string): Map<string, TorchTensorRecord> {
  const source = `${zip.path} (${top}/data.pkl)`;
  const storages = new Map<string, StorageRef>();
  const result = unpickle(zip.read(`${top}/data.pkl`), {
    findGlobal: (module, name) => allowedGlobal(module, name, source),
    persistentLoad: (pid) => loadStorage(pid, storages, zip, top, source),
  }, source);
  if (!(result instanceof Map)) throw new UserError(`${source} holds no state dict (a dict of tensors)`);
  const tensors = new Map<string, TorchTensorRecord>();
  for (const [key, value] of result) {
    if (typeof key !== 'string') throw new UserError(`${source}: the state dict has a key that is not a string`);
    if (!(value instanceof TensorRef)) throw new UserError(`${source}: "${key}" is not a tensor: pass a file that holds a plain state dict`);
    tensors.set(key, value.record);
  }
  return tensors;
}

function allowedGlobal(module: string, name: string, source: string): unknown {
  const qualname = `${module}.${name}`;
  switch (qualname) {
    case 'collections.OrderedDict':
      return new PyCallable(qualname, () => new Map());
    case 'torch._utils._rebuild_tensor_v2':
      return new PyCallable(qualname, (args) => rebuildTensor(args, source));
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PyCallable(qualname, (args) => args[0]); // (tensor, requires_grad, hooks[, state])
  }
  if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return new StorageClass(STORAGE_DTYPES[name]!);
  if (module === 'torch' && name.endsWith('Storage')) {
    throw new UserError(`${source} holds torch.${name} tensors, whose dtype is not supported (supported: ${Object.keys(STORAGE_DTYPES).join(', ')})`);
  }
  throw new UserError(`refusing to load ${qualname} from ${source}: it could run code (only tensors and dicts are read)`);
}

/** Persistent id ('storage', StorageClass, key, location, numel) -> the storage record it names. */
function loadStorage(pid: unknown, storages: Map<string, StorageRef>, zip: ZipReader, top: string, source: string): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof StorageClass) || typeof pid[2] !== 'string' || !isCount(pid[4])) {
    throw new UserError(`${source}: a persistent id that is not a typed storage`);
  }
  const [, cls, key, , count] = pid as [string, StorageClass, string, unknown, number];
  const known = storages.get(key);
  if (known) {
    if (known.dtype !== cls.dtype || known.numel !== count) throw new UserError(`${source}: storage ${key} is described twice, differently`);
    return known;
  }
  const entry = zip.entry(`${top}/data/${key}`);
  if (entry.size !== count * ITEM_SIZE[cls.dtype]) {
    throw new UserError(`${source}: storage ${key} has ${entry.size} bytes, but ${count} ${cls.dtype} elements need ${count * ITEM_SIZE[cls.dtype]}`);
  }
  const ref = new StorageRef(cls.dtype, key, count);
  storages.set(key, ref);
  return ref;
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(args: readonly unknown[], source: string): TensorRef {
  const [storage, offset, shape, stride] = args;
  if (!(storage instanceof StorageRef) || !isCount(offset) || !isCountList(shape) || !isCountList(stride) || shape.length !== stride.length) {
    throw new UserError(`${source}: a tensor whose storage, offset, size or stride is malformed`);
  }
  const count = numel(shape);
  if (count > 0 && offset + lastIndex(shape, stride) >= storage.numel) {
    throw new UserError(`${source}: a tensor of shape [${shape.join(', ')}] reaches past the end of storage ${storage.key}`);
  }
  return new TensorRef({ dtype: storage.dtype, shape: [...shape], stride: [...stride], storageKey: storage.key, storageOffset: offset });
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** The largest element index a non-empty tensor touches, relative to its storage offset. */
function lastIndex(shape: number[], stride: number[]): number {
  return shape.reduce((sum, n, d) => sum + (n - 1) * stride[d]!, 0);
}

/** Copies a strided view out of `span` (which starts at the view's first element) into row-major order. */
function gather(span: Uint8Array, shape: number[], stride: number[], item: number): Uint8Array {
  const out = new Uint8Array(numel(shape) * item);
  const index = new Array<number>(shape.length).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o += item) {
    out.set(span.subarray(src * item, src * item + item), o);
    for (let d = shape.length - 1; d >= 0; d--) {
      src += stride[d]!;
      if (++index[d]! < shape[d]!) break;
      src -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isCountList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}
