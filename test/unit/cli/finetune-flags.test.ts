// Every `finetune` flag reaches the options the trainer receives: one table row per flag (a non-default value
// as typed, the option it sets, the value expected there), given all at once on the command line, from a YAML
// --config and from a JSON --config. A flag the parser defines but the table lacks fails the test.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { finetuneCommand, optionsFromArgv } from '../../../src/cli/finetune.ts';
import { FINETUNE_DEFAULTS } from '../../../src/train/finetune-options.ts';

/** [flag, value as typed, option path (null: the flag sets no option), expected option value] */
type Row = [flag: string, typed: string, option: string | null, expected: unknown];

const ROWS: Row[] = [
  ['base_model', './llama-7b-hf', 'baseModel', './llama-7b-hf'],
  ['data_path', 'data.jsonl', 'dataPath', 'data.jsonl'],
  ['val_data_path', 'val.jsonl', 'valDataPath', 'val.jsonl'],
  ['output_dir', './run', 'outputDir', './run'],
  ['batch_size', '64', 'batchSize', 64],
  ['micro_batch_size', '8', 'microBatchSize', 8],
  ['num_epochs', '5', 'numEpochs', 5],
  ['max_steps', '40', 'maxSteps', 40],
  ['learning_rate', '1e-4', 'learningRate', 1e-4],
  ['cutoff_len', '512', 'cutoffLen', 512],
  ['val_set_size', '0.1', 'valSetSize', 0.1],
  ['lora_r', '16', 'loraR', 16],
  ['lora_alpha', '32', 'loraAlpha', 32],
  ['lora_dropout', '0.1', 'loraDropout', 0.1],
  ['lora_target_modules', '[q_proj,k_proj,down_proj]', 'loraTargetModules', ['q_proj', 'k_proj', 'down_proj']],
  ['finetuning_type', 'full', 'finetuningType', 'full'],
  ['full_finetune', 'true', 'finetuningType', 'full'],
  ['freeze_trainable_layers', '-3', 'freezeTrainableLayers', -3],
  ['freeze_trainable_modules', '[mlp,self_attn]', 'freezeTrainableModules', ['mlp', 'self_attn']],
  ['loraplus_lr_ratio', '16', 'loraplusLrRatio', 16],
  ['train_on_inputs', 'false', 'trainOnInputs', false],
  ['add_eos_token', 'true', 'addEosToken', true],
  ['group_by_length', 'true', 'groupByLength', true],
  ['resume_from_checkpoint', './run/checkpoint-200', 'resumeFromCheckpoint', './run/checkpoint-200'],
  ['nproc_per_node', '1', null, null], // relaunches under mpirun before any option exists (test/e2e/finetune-data-parallel.test.ts)
  ['prompt_template_name', 'vigogne', 'promptTemplateName', 'vigogne'],
  ['data_format', 'alpaca', 'dataset.format', 'alpaca'],
  ['instruction_field', 'question', 'dataset.instructionField', 'question'],
  ['input_field', 'context', 'dataset.inputField', 'context'],
  ['output_field', 'answer', 'dataset.outputField', 'answer'],
  ['text_field', 'body', 'dataset.textField', 'body'],
  ['skip_empty_outputs', 'true', 'dataset.skipEmptyOutputs', true],
  ['skip_bad_records', 'true', 'dataset.skipBadRecords', true],
  ['chat_template', 'chatml', 'chatTemplate', 'chatml'],
  ['messages_field', 'dialog', 'dataset.conversation.messages', 'dialog'],
  ['role_tag', 'speaker', 'dataset.conversation.roleTag', 'speaker'],
  ['content_tag', 'text', 'dataset.conversation.contentTag', 'text'],
  ['user_tag', 'client', 'dataset.conversation.userTag', 'client'],
  ['assistant_tag', 'agent', 'dataset.conversation.assistantTag', 'agent'],
  ['system_tag', 'context', 'dataset.conversation.systemTag', 'context'],
  ['system_field', 'preamble', 'dataset.conversation.system', 'preamble'],
  ['history_field', 'turns', 'dataset.conversation.history', 'turns'],
  ['data_columns', '{"b.jsonl":{"data_format":"sharegpt"}}', 'dataColumns', '{"b.jsonl":{"data_format":"sharegpt"}}'],
  ['interleave_probs', '[0.7,0.3]', 'interleaveProbs', [0.7, 0.3]],
  ['packing', 'true', 'packing', true],
  ['gradient_checkpointing', 'true', 'gradientCheckpointing', true],
  ['activation_dtype', 'bf16', 'activationDtype', 'bf16'],
  ['compute_dtype', 'bf16', 'computeDtype', 'bf16'],
  ['load_in_8bit', 'true', 'quantization.loadIn8bit', true],
  ['load_in_4bit', 'true', 'quantization.loadIn4bit', true],
  ['bnb_4bit_quant_type', 'fp4', 'quantization.bnb4bitQuantType', 'fp4'],
  ['bnb_4bit_use_double_quant', 'true', 'quantization.bnb4bitUseDoubleQuant', true],
  ['bnb_4bit_compute_dtype', 'bfloat16', 'quantization.bnb4bitComputeDtype', 'bfloat16'],
  ['llm_int8_threshold', '4.5', 'quantization.llmInt8Threshold', 4.5],
  ['llm_int8_skip_modules', '[down_proj,model.layers.0]', 'quantization.llmInt8SkipModules', ['down_proj', 'model.layers.0']],
  ['backend', 'js', null, null], // the command selects the backend (selectBackend) and passes it to finetune
  ['seed', '7', 'seed', 7],
  ['shuffle', 'false', 'shuffle', false],
  ['warmup_steps', '10', 'warmupSteps', 10],
  ['warmup_ratio', '0.03', 'warmupRatio', 0.03],
  ['lr_scheduler', 'cosine', 'lrScheduler', 'cosine'],
  ['logging_steps', '5', 'loggingSteps', 5],
  ['eval_steps', '50', 'evalSteps', 50],
  ['save_steps', '100', 'saveSteps', 100],
  ['save_total_limit', '2', 'saveTotalLimit', 2],
  ['overwrite_output_dir', 'true', 'overwriteOutputDir', true],
  ['load_best_model_at_end', 'false', 'loadBestModelAtEnd', false],
  ['weight_decay', '0.01', 'weightDecay', 0.01],
  ['max_grad_norm', '0.5', 'maxGradNorm', 0.5],
  ['use_rslora', 'true', 'useRslora', true],
  ['use_dora', 'true', 'useDora', true],
  ['modules_to_save', 'embed_tokens,lm_head', 'modulesToSave', ['embed_tokens', 'lm_head']],
  ['new_special_tokens', '<|im_start|>,<|im_end|>', 'newSpecialTokens', ['<|im_start|>', '<|im_end|>']],
  ['lora_init', 'gaussian', 'loraInit', 'gaussian'],
  ['progress', String(!FINETUNE_DEFAULTS.progress), 'progress', !FINETUNE_DEFAULTS.progress], // the default follows stderr's TTY
  ['wandb_project', 'alpaca', null, undefined], // the wandb flags are accepted and set nothing
  ['wandb_run_name', 'run-1', null, undefined],
  ['wandb_watch', 'all', null, undefined],
  ['wandb_log_model', 'true', null, undefined],
];
/** Flags that are not settings: how the config variants are given, and the built-in example (test/e2e/finetune-cli.test.ts). */
const NOT_SETTINGS = ['config', 'example'];

const get = (o: unknown, path: string) => path.split('.').reduce((v: any, key) => v?.[key], o);
function set(o: any, path: string, value: unknown): void {
  const keys = path.split('.');
  keys.slice(0, -1).reduce((v, key) => v[key], o)[keys.at(-1)!] = value;
}

/** The defaults (an empty command line) with every row's expected value in place. */
function expectedOptions() {
  const defaults = optionsFromArgv([]);
  const expected = structuredClone({ ...defaults, log: undefined });
  for (const [flag, , option, value] of ROWS) {
    if (option === null) continue;
    assert.notDeepEqual(get(defaults, option), value, `--${flag}: the table's value is the default; pick another`);
    set(expected, option, value);
  }
  return { ...expected, log: defaults.log };
}

test('the table has a row for every finetune flag', () => {
  const covered = [...ROWS.map(([flag]) => flag), ...NOT_SETTINGS].sort();
  assert.deepEqual(covered, Object.keys(finetuneCommand.flags).sort());
});

test('every flag reaches the options: on the command line, from YAML, from JSON', () => {
  const expected = expectedOptions();
  assert.deepEqual(optionsFromArgv(ROWS.flatMap(([flag, typed]) => [`--${flag}`, typed])), expected, 'command line');
  const dir = mkdtempSync(join(tmpdir(), 'finetune-flags-'));
  try {
    const yaml = join(dir, 'x.yaml');
    writeFileSync(yaml, ROWS.map(([flag, typed]) => `${flag}: ${typed}\n`).join(''));
    assert.deepEqual(optionsFromArgv(['--config', yaml]), expected, 'YAML');
    const json = join(dir, 'x.json');
    writeFileSync(json, JSON.stringify(Object.fromEntries(ROWS.map(([flag, typed]) => [flag, parseYaml(typed)])))); // numbers, booleans, lists typed
    assert.deepEqual(optionsFromArgv(['--config', json]), expected, 'JSON');
  } finally {
    rmSync(dir, { recursive: true });
  }
});
