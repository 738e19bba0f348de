// `alpaca-lora plan`: the predicted peak memory of a `finetune` run (weights, trainable tensors, activations,
// workspace) from finetune's own flags that size it, as a table or --json. Parsing and printing only; the
// work is train/memory-plan.ts.

import { BACKEND_NAMES, selectBackend, type BackendName } from '../backends/select.ts';
import { loadLlamaConfig } from '../arch/llama-config.ts';
import { hasTokenizer, loadTokenizerWith } from '../tokenizer/load.ts';
import { trainNewTokens } from '../train/finetune-setup.ts';
import { planJson, planRun, renderPlan } from '../train/memory-plan.ts';
import { UsageError, type FlagSpecs, type ParsedFlags } from './args.ts';
import type { Command } from './command.ts';
import { finetuneCommand, optionsFromFlags } from './finetune.ts';
import { QUANT_FLAGS } from './quant-flags.ts';

/** finetune's flags that change memory, shared with it (same definitions, same defaults). */
const SIZING = [
  'base_model', 'micro_batch_size', 'cutoff_len', 'finetuning_type', 'full_finetune', 'freeze_trainable_layers', 'freeze_trainable_modules',
  'lora_r', 'lora_target_modules', 'modules_to_save', 'new_special_tokens', 'gradient_checkpointing', 'packing', 'activation_dtype', 'backend',
  ...Object.keys(QUANT_FLAGS),
];

const FLAGS: FlagSpecs = {
  ...Object.fromEntries(SIZING.map((name) => [name, finetuneCommand.flags[name]!])),
  weight_dtype: { type: 'string', help: 'f32, bf16 or f16: the stored dtype of a config.json alone\'s weights (default: its torch_dtype)' },
  json: { type: 'boolean', default: false, help: 'print the plan as one JSON object (GiB)' },
};

const FINETUNE_DEFAULTS: ParsedFlags = Object.fromEntries(Object.entries(finetuneCommand.flags).map(([name, spec]) => [name, spec.default]));

export const planCommand: Command = {
  name: 'plan',
  summary: 'predicted peak memory of a finetune run (weights, trainable, activations, workspace) for a model folder, Hub id or config.json',
  flags: FLAGS,
  async run(flags, _positionals, given) {
    const o = optionsFromFlags({ ...FINETUNE_DEFAULTS, ...given });
    if (!o.baseModel) throw new UsageError('plan: pass --base_model (a model folder, a Hub id, or a config.json)');
    const log = (line: string) => console.error(line);
    const name = flags.backend as string;
    if (!(BACKEND_NAMES as readonly string[]).includes(name)) throw new UsageError(`plan: --backend must be one of ${BACKEND_NAMES.join(', ')}, got "${name}"`);
    const backend = name === 'auto' ? selectBackend('auto', log).name : (name as Exclude<BackendName, 'auto'>);
    const weightDtype = flags.weight_dtype as string | undefined;
    if (weightDtype !== undefined && !['f32', 'bf16', 'f16'].includes(weightDtype)) throw new UsageError(`plan: --weight_dtype must be f32, bf16 or f16, got "${weightDtype}"`);
    let vocabSize: number | undefined;
    if (o.newSpecialTokens.length) {
      if (!hasTokenizer(o.baseModel)) throw new UsageError('plan: --new_special_tokens needs --base_model a local model folder with its tokenizer (to count the tokens that are new)');
      vocabSize = loadTokenizerWith(o.baseModel, o.newSpecialTokens).tokenizer.vocabSize;
      trainNewTokens(o, loadLlamaConfig(o.baseModel, { flag: '--base_model' }), () => {});
    }
    const plan = await planRun({ ...o, backend, vocabSize, weightDtype: weightDtype as 'f32' | 'bf16' | 'f16' | undefined }, log);
    console.log(flags.json ? JSON.stringify(planJson(plan)) : renderPlan(plan));
  },
};
