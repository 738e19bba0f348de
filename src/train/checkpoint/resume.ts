// --resume_from_checkpoint: find what the path holds (a checkpoint, a folder of checkpoints, or a bare PEFT
// adapter). Loading the weights is the method's (methods/); the trainer's own state is trainer-state.ts.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { isCheckpoint, listCheckpoints } from './checkpoint.ts';

export type ResumePoint = { kind: 'checkpoint'; dir: string } | { kind: 'adapter'; dir: string };

export function locateResume(path: string): ResumePoint {
  const flag = `--resume_from_checkpoint ${path}`;
  if (!existsSync(path)) throw new UserError(`${flag} does not exist`);
  if (isCheckpoint(path)) return { kind: 'checkpoint', dir: path };
  const latest = listCheckpoints(path).at(-1);
  if (latest) return { kind: 'checkpoint', dir: latest.dir };
  if (existsSync(join(path, 'adapter_config.json'))) return { kind: 'adapter', dir: path };
  throw new UserError(
    `${flag} is neither a checkpoint (trainer_state.json + optimizer.safetensors), a folder of checkpoint-N folders, ` +
      'nor a PEFT adapter (adapter_config.json + adapter_model.safetensors)',
  );
}
