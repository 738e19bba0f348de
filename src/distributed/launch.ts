// `--nproc_per_node N`: re-runs this very command under mpirun with N processes on this machine, each bound
// to its share of the cores, and returns mpirun's exit code. Not the ranks' world (world.ts).

import { spawn, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { UserError } from '../errors.ts';

/** argv without `--nproc_per_node N` / `--nproc-per-node=N` (the ranks must not relaunch themselves). */
export function withoutNprocFlag(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--nproc[_-]per[_-]node=/.test(a)) continue;
    if (/^--nproc[_-]per[_-]node$/.test(a)) {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** mpirun's arguments for n ranks on this machine: each rank bound to floor(cores / n) cores when there are enough. */
export function mpirunArgs(n: number, cores: number, command: readonly string[], isRoot: boolean): string[] {
  const perRank = Math.floor(cores / n);
  const placement = perRank >= 1 ? ['--map-by', `slot:PE=${perRank}`, '--bind-to', 'core'] : ['--oversubscribe', '--bind-to', 'none'];
  return ['-np', String(n), ...placement, ...(isRoot ? ['--allow-run-as-root'] : []), ...command];
}

/** Runs `mpirun … node <this script> <argv without the flag>`; resolves to its exit code. */
export async function relaunchUnderMpi(n: number): Promise<number> {
  if (spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new UserError(`--nproc_per_node ${n} needs mpirun, which was not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev) or run one process`);
  }
  const command = [process.execPath, ...process.execArgv, process.argv[1]!, ...withoutNprocFlag(process.argv.slice(2))];
  const args = mpirunArgs(n, cpus().length, command, process.getuid?.() === 0);
  const child = spawn('mpirun', args, { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  return await new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
}
