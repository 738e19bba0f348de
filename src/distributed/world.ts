// The processes of a data-parallel run as the trainer sees them: this rank, how many there are, and a sum
// all-reduce. One process is a world of size 1 with no MPI at all. Not the launcher (launch.ts).

import { UserError } from '../errors.ts';
import { loadMpiAddon } from './mpi-addon.ts';

export interface World {
  rank: number;
  size: number;
  /** This process's rank and the number of ranks on its machine (threads and GPUs are shared per machine). */
  localRank: number;
  localSize: number;
  /** In place: the elementwise sum over all ranks (identity in a world of one). */
  allReduceSum(buf: Float32Array | Float64Array): void;
  /** In place: root's bytes copied into every rank's buf (the same length on every rank). */
  broadcast(buf: Uint8Array, root: number): void;
  /** Ends every rank of the job with this exit code. */
  abort(code: number): never;
  finish(): void;
}

export const SINGLE_PROCESS: World = {
  rank: 0,
  size: 1,
  localRank: 0,
  localSize: 1,
  allReduceSum() {},
  broadcast() {},
  abort(code) {
    process.exit(code);
  },
  finish() {},
};

/** The launcher that started this process, from the variables Open MPI, MPICH/PMI and Slurm set. */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'PMIX_RANK'].some((k) => env[k] !== undefined);
}

/** torchrun's WORLD_SIZE when set, else 1. */
function torchrunWorldSize(env: NodeJS.ProcessEnv): number {
  const raw = env.WORLD_SIZE;
  if (raw === undefined) return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`WORLD_SIZE=${raw} is not a positive whole number`);
  return n;
}

/** The GPU a rank uses: the local-rank-th of CUDA_VISIBLE_DEVICES when set, else the local rank itself. */
export function gpuOfLocalRank(visible: string | undefined, localRank: number): string {
  const list = visible?.split(',').map((d) => d.trim()).filter((d) => d !== '') ?? [];
  if (list.length === 0) return String(localRank);
  const gpu = list[localRank];
  if (gpu === undefined) throw new UserError(`CUDA_VISIBLE_DEVICES=${visible} names ${list.length} GPUs but this machine runs more ranks than that: start at most ${list.length} processes per machine`);
  return gpu;
}

let joined: World | null = null;

/**
 * The run's world: MPI's when an MPI launcher started this process (its rank and size also exported as
 * torchrun's WORLD_SIZE / RANK / LOCAL_RANK), else a single process. WORLD_SIZE > 1 without MPI is an error.
 */
export function joinWorld(env: NodeJS.ProcessEnv = process.env): World {
  if (joined) return joined;
  if (!launchedByMpi(env)) {
    const n = torchrunWorldSize(env);
    if (n > 1) {
      throw new UserError(`WORLD_SIZE=${n} but this process was not started by mpirun: run \`mpirun -np ${n} alpaca-lora finetune …\` or \`alpaca-lora finetune --nproc_per_node ${n} …\``);
    }
    return (joined = SINGLE_PROCESS);
  }
  const addon = loadMpiAddon();
  if ('unavailable' in addon) throw new UserError(`this process was started by an MPI launcher but ${addon.unavailable}`);
  const w = addon.init();
  const given = torchrunWorldSize(env);
  if (env.WORLD_SIZE !== undefined && given !== w.size) throw new UserError(`WORLD_SIZE=${given} disagrees with the MPI launcher's ${w.size} processes: unset WORLD_SIZE`);
  Object.assign(env, { WORLD_SIZE: String(w.size), RANK: String(w.rank), LOCAL_RANK: String(w.localRank) });
  if (w.localSize > 1) env.CUDA_VISIBLE_DEVICES = gpuOfLocalRank(env.CUDA_VISIBLE_DEVICES, w.localRank);
  joined = {
    ...w,
    allReduceSum: (buf) => addon.allreduceSum(buf),
    broadcast: (buf, root) => addon.broadcast(buf, root),
    abort: (code) => addon.abort(code),
    finish: () => addon.finalize(),
  };
  return joined;
}
