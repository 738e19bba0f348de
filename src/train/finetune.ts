// `finetune` as a library call: alpaca-lora's finetune.py end to end. Setup (finetune-setup.ts: model, data,
// method, trainer, resume), the loop here (logs, evals, checkpoints, Ctrl-C), then the end (finetune-finish.ts:
// final eval, best checkpoint, the verified output). Flag parsing is in cli/finetune.ts.

import { rotateCheckpoints, writeCheckpoint } from './checkpoint/checkpoint.ts';
import { optimizerTensors } from './checkpoint/optimizer-state.ts';
import { trainerState } from './checkpoint/trainer-state.ts';
import { finishRun, type FinetuneResult } from './finetune-finish.ts';
import { setupRun, type FinetuneInput, type FinetuneRun } from './finetune-setup.ts';
import { recordEval, runLoop } from './loop.ts';
import { quantizationRecord } from '../model/quantized-base.ts';

export type { FinetuneInput } from './finetune-setup.ts';
export type { FinetuneResult } from './finetune-finish.ts';

export async function finetune(input: FinetuneInput): Promise<FinetuneResult> {
  const r = await setupRun(input);
  const result = await finishRun(r, await trainLoop(r));
  r.world.finish();
  return result;
}

/** Evaluates at step 0 (a fresh run with a validation set), then steps to the end or to Ctrl-C. */
async function trainLoop(r: FinetuneRun): Promise<'done' | 'stopped'> {
  const { options: o, trainer, run, progress, metrics, evaluate } = r;
  const lead = r.world.rank === 0; // the other ranks of a data-parallel run only train
  if (evaluate && trainer.step === 0) {
    const entry = recordEval(run, trainer, await evaluate());
    r.printLog(entry);
    await metrics.append(entry);
  }
  await r.report(`running: step ${trainer.step} of ${trainer.totalSteps}`);

  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    progress.log('interrupted: finishing this step, then saving a checkpoint (interrupt again to quit at once; the last checkpoint stays intact)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runLoop(trainer, run, o, evaluate, {
      onStep: (s) => progress.step(s),
      onLog: async (e) => {
        if (!lead) return;
        r.printLog(e);
        await metrics.append(e);
        await r.report(`running: step ${trainer.step} of ${trainer.totalSteps}`);
      },
      save: async (step) => {
        if (!lead) return;
        const check = r.saveCheck();
        const dir = await writeCheckpoint(o.outputDir, step, {
          writeWeights: (tmp) => r.method.writeCheckpoint(tmp, check),
          optimizer: await optimizerTensors(r.be, trainer.optimizer),
          state: trainerState(trainer, r.recipe, run, quantizationRecord(r.model.quantization)),
        });
        const removed = await rotateCheckpoints(o.outputDir, o.saveTotalLimit, run.best?.checkpoint ?? null, r.runId);
        progress.log(`saved ${dir}${removed.length ? ` (removed ${removed.join(', ')})` : ''}`);
      },
      stopRequested: () => stop,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.finish();
  }
}
