// The end of `finetune`: after a stop, say how to continue; after the last step, the final evaluation, the best
// checkpoint's weights when load_best_model_at_end asks, the method's verified output in output_dir, the report.

import { join } from 'node:path';
import type { Model } from '../model/llama.ts';
import type { LoraAdapter } from '../model/lora.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { checkpointName } from './checkpoint/checkpoint.ts';
import type { FinetuneRun } from './finetune-setup.ts';
import { recordEval, type LogEntry } from './loop.ts';
import { formatDuration } from './progress.ts';

export interface FinetuneResult {
  outputDir: string;
  /** Optimizer steps done. */
  steps: number;
  /** Stopped by Ctrl-C (a checkpoint was saved) rather than finished. */
  stopped: boolean;
  /** Eval loss of the saved output, when there is a validation set. */
  evalLoss: number | null;
  history: LogEntry[];
  seconds: number;
  /** The loaded model (holding the trained weights, unless an adapter does) and tokenizer, for a caller that generates next. */
  model: Model;
  tokenizer: Tokenizer;
  /** The trained adapter (LoRA); null when the trained weights are the model's own. */
  adapter: LoraAdapter | null;
}

export async function finishRun(r: FinetuneRun, outcome: 'done' | 'stopped'): Promise<FinetuneResult> {
  const { options: o, trainer, run, method } = r;
  const log = o.log;
  const result = (evalLoss: number | null, stopped: boolean): FinetuneResult => ({
    outputDir: o.outputDir, steps: trainer.step, stopped, evalLoss, history: run.history, seconds: (performance.now() - r.started) / 1000,
    model: r.model, tokenizer: r.tokenizer, adapter: method.generationAdapter,
  });
  if (r.world.rank !== 0) return result(null, outcome === 'stopped'); // rank 0 evaluates and writes
  if (outcome === 'stopped') {
    await r.report(`stopped at step ${trainer.step} of ${trainer.totalSteps}`);
    log(`stopped at step ${trainer.step}: continue with --resume_from_checkpoint ${join(o.outputDir, checkpointName(trainer.step))}`);
    return result(null, true);
  }

  let evalLoss: number | null = null;
  if (r.evaluate) {
    const last = run.history.at(-1);
    if (!(last?.kind === 'eval' && last.step === trainer.step)) {
      const entry = recordEval(run, trainer, await r.evaluate());
      r.printLog(entry);
      await r.metrics.append(entry);
    }
    evalLoss = (run.history.at(-1) as { eval_loss: number }).eval_loss;
    const best = run.best;
    if (o.loadBestModelAtEnd && best && best.step !== trainer.step && best.checkpoint) {
      await method.loadCheckpoint(join(o.outputDir, best.checkpoint));
      evalLoss = best.evalLoss;
      log(`load_best_model_at_end: using ${best.checkpoint} (eval_loss ${best.evalLoss.toFixed(4)})`);
    }
  }
  const saved = await method.saveFinal(o.outputDir, r.saveCheck());
  await r.report('finished');
  const done = result(evalLoss, false);
  log(`saved ${saved} after ${trainer.step} steps in ${formatDuration(done.seconds)}` + (evalLoss !== null ? `; eval_loss ${evalLoss.toFixed(4)}` : ''));
  return done;
}
