// Which GEMM kernel the cpu backend uses (the addon's own or OpenBLAS's) for each weight dtype and shape class:
// both are timed at first use on a machine and the faster kept in the user's cache folder, per machine key (CPU
// model, threads, library builds). Pure logic with the timer injected (cpu-gemm-timing.ts times the addon).
// Not the kernels, and not where ALPACA_CPU_GEMM is read (the addon does that at load).

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const GEMM_KERNELS = ['own', 'openblas'] as const;
export type GemmKernel = (typeof GEMM_KERNELS)[number];
/** The weight's storage: f32, bf16 (quantized weights share its entry) or f16. */
export const GEMM_DTYPES = ['f32', 'bf16', 'f16'] as const;
export type GemmDtype = (typeof GEMM_DTYPES)[number];
/** skinny: some GEMM dimension is at most 64 (LoRA's rank-r products, short prompts); large: none is. */
export const GEMM_CLASSES = ['large', 'skinny'] as const;
export type GemmClass = (typeof GEMM_CLASSES)[number];
export type GemmEntry = `${GemmDtype}/${GemmClass}`;
export type GemmChoice = Record<GemmEntry, GemmKernel>;
/** Seconds per timed call, best of the rounds, per entry and kernel. */
export type GemmTimings = Record<GemmEntry, Record<GemmKernel, number>>;

export const GEMM_ENTRIES: readonly GemmEntry[] = GEMM_DTYPES.flatMap((d) => GEMM_CLASSES.map((c) => `${d}/${c}` as const));

/** Seconds one call of `kernel` takes on the entry's representative shapes. */
export type GemmTimer = (kernel: GemmKernel, dtype: GemmDtype, shapeClass: GemmClass) => number;

const CACHE_VERSION = 1;

interface CacheRecord {
  choice: GemmChoice;
  seconds: GemmTimings;
  measuredAt: string;
}

interface CacheFile {
  version: typeof CACHE_VERSION;
  machines: Record<string, CacheRecord>;
}

/** $XDG_CACHE_HOME/alpaca-lora/cpu-gemm.json, else ~/.cache/alpaca-lora/cpu-gemm.json. */
export function gemmCacheFile(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'alpaca-lora', 'cpu-gemm.json');
}

const isKernel = (v: unknown): v is GemmKernel => GEMM_KERNELS.includes(v as GemmKernel);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function validRecord(v: unknown): v is CacheRecord {
  if (!isObject(v) || !isObject(v.choice) || !isObject(v.seconds) || typeof v.measuredAt !== 'string') return false;
  const { choice, seconds } = v;
  return GEMM_ENTRIES.every((e) => isKernel(choice[e]) && isObject(seconds[e]) &&
    GEMM_KERNELS.every((k) => typeof (seconds[e] as Record<string, unknown>)[k] === 'number'));
}

/** The cache's machines whose records are well formed; an unreadable or malformed file reads as empty. */
function readCache(file: string): Record<string, CacheRecord> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
  if (!isObject(parsed) || parsed.version !== CACHE_VERSION || !isObject(parsed.machines)) return {};
  return Object.fromEntries(Object.entries(parsed.machines).filter(([, r]) => validRecord(r))) as Record<string, CacheRecord>;
}

/** Adds (or replaces) one machine's record, through a temporary file renamed over the cache; false when it cannot write. */
function writeCache(file: string, key: string, record: CacheRecord): boolean {
  const content: CacheFile = { version: CACHE_VERSION, machines: { ...readCache(file), [key]: record } };
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, JSON.stringify(content, null, 2) + '\n');
    renameSync(tmp, file);
    return true;
  } catch {
    return false;
  }
}

/** Times every entry with both kernels, `rounds` times interleaved (kernel order alternating), keeping the best. */
export function measureGemm(time: GemmTimer, rounds = 3): { choice: GemmChoice; seconds: GemmTimings } {
  const seconds = Object.fromEntries(GEMM_ENTRIES.map((e) => [e, { own: Infinity, openblas: Infinity }])) as GemmTimings;
  for (let round = 0; round < rounds; round++) {
    for (const entry of GEMM_ENTRIES) {
      const [dtype, shapeClass] = entry.split('/') as [GemmDtype, GemmClass];
      const order = round % 2 === 0 ? GEMM_KERNELS : [...GEMM_KERNELS].reverse();
      for (const kernel of order) seconds[entry][kernel] = Math.min(seconds[entry][kernel], time(kernel, dtype, shapeClass));
    }
  }
  const choice = Object.fromEntries(GEMM_ENTRIES.map((e) => [e, seconds[e].openblas < seconds[e].own ? 'openblas' : 'own'])) as GemmChoice;
  return { choice, seconds };
}

export interface ChosenGemm {
  choice: GemmChoice;
  seconds: GemmTimings;
  /** 'cache': read from `file`; 'measured': timed now (and written to `file` unless `written` is false). */
  source: 'cache' | 'measured';
  file: string;
  written?: boolean;
}

/** The cached choice for this machine key, else a fresh measurement, which is then cached. */
export function chooseGemm(opts: { key: string; file: string; time: GemmTimer; rounds?: number; now?: () => Date }): ChosenGemm {
  const cached = readCache(opts.file)[opts.key];
  if (cached) return { choice: cached.choice, seconds: cached.seconds, source: 'cache', file: opts.file };
  const { choice, seconds } = measureGemm(opts.time, opts.rounds);
  const written = writeCache(opts.file, opts.key, { choice, seconds, measuredAt: (opts.now?.() ?? new Date()).toISOString() });
  return { choice, seconds, source: 'measured', file: opts.file, written };
}

/** "f32 own/own, bf16 own/openblas, f16 own/own" (large/skinny per dtype), the form the addon's info() uses. */
export function gemmTableString(choice: GemmChoice): string {
  return GEMM_DTYPES.map((d) => `${d} ${choice[`${d}/large`]}/${choice[`${d}/skinny`]}`).join(', ');
}

/** The choice a gemmTableString describes. */
export function parseGemmTable(table: string): GemmChoice {
  const choice: Partial<GemmChoice> = {};
  for (const part of table.split(', ')) {
    const m = /^(f32|bf16|f16) (own|openblas)\/(own|openblas)$/.exec(part);
    if (!m) throw new Error(`not a GEMM table: ${table}`);
    choice[`${m[1] as GemmDtype}/large`] = m[2] as GemmKernel;
    choice[`${m[1] as GemmDtype}/skinny`] = m[3] as GemmKernel;
  }
  if (!GEMM_ENTRIES.every((e) => choice[e])) throw new Error(`not a GEMM table: ${table}`);
  return choice as GemmChoice;
}
