// Picks the compute backend for a command: --backend js|cpu|cuda|auto. `auto` takes cuda, then cpu,
// then js, whichever is available; the choice is printed as the first line of every command.

import type { Backend } from '../engine/backend.ts';
import { UserError } from '../errors.ts';
import { JsBackend } from './js/index.ts';
import { cpuLoader } from './native/cpu.ts';
import { cudaLoader } from './native/cuda.ts';

export type BackendName = 'js' | 'cpu' | 'cuda' | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['js', 'cpu', 'cuda', 'auto'];

interface NativeLoader {
  name: 'cpu' | 'cuda';
  load(): Backend | { unavailable: string };
  /** After a successful load: a few words on how it runs (threads, libraries), printed with its name. */
  describe?(): string;
}

const nativeLoaders: readonly NativeLoader[] = [cudaLoader, cpuLoader]; // the order `auto` tries

export function selectBackend(requested: string, log: (line: string) => void = (l) => console.error(l)): Backend {
  if (!BACKEND_NAMES.includes(requested as BackendName)) {
    throw new UserError(`--backend ${requested} is not one of ${BACKEND_NAMES.join(', ')}`);
  }
  const reasons: string[] = [];
  for (const loader of nativeLoaders) {
    const name = loader.name;
    if (requested !== 'auto' && requested !== name) continue;
    const result = loader.load();
    if (!('unavailable' in result)) {
      const details = loader.describe ? ` [${loader.describe()}]` : '';
      log(`backend: ${name}${details}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
      return result;
    }
    if (requested === name) {
      const others = [...nativeLoaders.filter((l) => l.name !== name && !('unavailable' in l.load())).map((l) => l.name), 'js'];
      throw new UserError(`--backend ${name} is not available: ${result.unavailable}; available here: ${others.join(', ')} (or auto, the first of them)`);
    }
    reasons.push(`${name}: ${result.unavailable}`);
  }
  log(`backend: js${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
  return new JsBackend();
}
