// A LLaMA-Factory and an axolotl config, given as the only argument, reach the options they mean; their keys work
// on the command line too and are listed in --help; keys we lack are refused one per line with what to use;
// misspelt flags get the nearest one, another command's flag names that command; a stray argument and a second
// spelling of one setting are errors; --config works for every command.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECTIONS } from '../../../src/arch/projections.ts';
import { parseCommandLine, helpText } from '../../../src/cli/command-line.ts';
import { nearest } from '../../../src/cli/did-you-mean.ts';
import { finetuneCommand, optionsFromArgv } from '../../../src/cli/finetune.ts';
import { commands } from '../../../src/cli/commands.ts';
import { generateCommand } from '../../../src/cli/generate.ts';
import { ALIASES } from '../../../src/cli/aliases.ts';

function withFile(name: string, text: string, body: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'aliases-'));
  try {
    writeFileSync(join(dir, name), text);
    body(join(dir, name));
  } finally {
    rmSync(dir, { recursive: true });
  }
}

test('a LLaMA-Factory config as the only argument', () => {
  const yaml = [
    'model_name_or_path: ./llama', 'stage: sft', 'do_train: true', 'finetuning_type: lora', 'lora_rank: 16', 'lora_target: all',
    'dataset: ./data.json', 'cutoff_len: 1024', 'output_dir: ./saves', 'per_device_train_batch_size: 2', 'gradient_accumulation_steps: 8',
    'learning_rate: 1.0e-4', 'num_train_epochs: 2.0', 'lr_scheduler_type: cosine', 'warmup_ratio: 0.1', 'val_size: 0.1',
    'logging_steps: 5', 'save_steps: 50', 'eval_steps: 50',
  ].join('\n');
  withFile('llama3_lora_sft.yaml', yaml, (path) => {
    const o = optionsFromArgv([path]);
    assert.equal(o.baseModel, './llama');
    assert.equal(o.loraR, 16);
    assert.deepEqual(o.loraTargetModules, [...PROJECTIONS]);
    assert.equal(o.dataPath, './data.json');
    assert.equal(o.cutoffLen, 1024);
    assert.equal(o.microBatchSize, 2);
    assert.equal(o.batchSize, 16, 'batch = per-device batch × accumulation');
    assert.equal(o.learningRate, 1e-4);
    assert.equal(o.numEpochs, 2);
    assert.equal(o.lrScheduler, 'cosine');
    assert.equal(o.warmupRatio, 0.1);
    assert.equal(o.valSetSize, 0.1);
    assert.deepEqual([o.loggingSteps, o.saveSteps, o.evalSteps], [5, 50, 50]);
  });
});

test('an axolotl config as the only argument', () => {
  const yaml = [
    'base_model: ./llama', 'adapter: lora', 'datasets:', '  - path: ./alpaca.jsonl', '    type: alpaca', 'val_set_size: 0.05',
    'sequence_len: 512', 'lora_r: 32', 'lora_alpha: 16', 'lora_target_linear: true', 'micro_batch_size: 2', 'gradient_accumulation_steps: 4',
    'num_epochs: 4', 'lr_scheduler: cosine', 'learning_rate: 0.0002', 'gradient_checkpointing: false', 'load_in_8bit: false',
  ].join('\n');
  withFile('lora.yml', yaml, (path) => {
    const o = optionsFromArgv([path]);
    assert.equal(o.baseModel, './llama');
    assert.equal(o.dataPath, './alpaca.jsonl');
    assert.equal(o.dataset.format, 'alpaca');
    assert.equal(o.cutoffLen, 512);
    assert.deepEqual(o.loraTargetModules, [...PROJECTIONS]);
    assert.deepEqual([o.microBatchSize, o.batchSize, o.numEpochs, o.valSetSize], [2, 8, 4, 0.05]);
  });
});

test('the other tools\' keys work on the command line and are listed in --help', () => {
  const o = optionsFromArgv(['--model_name_or_path', 'x', '--lora_target', 'q_proj,k_proj', '--gradient_accumulation_steps', '2']);
  assert.deepEqual([o.baseModel, o.loraTargetModules, o.batchSize], ['x', ['q_proj', 'k_proj'], 8], 'accumulation × the default micro batch 4');
  assert.equal(optionsFromArgv(['--quantization_bit', '4']).quantization.loadIn4bit, true);
  assert.throws(() => optionsFromArgv(['--quantization_bit', '2']), /quantization_bit: 2 is not supported; supported: 4, 8/);
  const help = helpText(finetuneCommand);
  for (const alias of ALIASES.filter((a) => a.flag in finetuneCommand.flags)) assert.match(help, new RegExp(`--${alias.key} `));
});

test('refusals name the key and what to do', () => {
  const refused = (text: string) => {
    let message = '';
    withFile('x.yaml', text, (path) => assert.throws(() => optionsFromArgv([path]), (err: Error) => ((message = err.message), true)));
    return message;
  };
  const unknown = refused('template: llama3\nbf16: true\nlora_rr: 4\n');
  assert.match(unknown, /\n {2}template: not a setting of finetune; use prompt_template_name/);
  assert.match(unknown, /\n {2}bf16: not a setting of finetune; leave it out/);
  assert.match(unknown, /\n {2}lora_rr: not a setting of finetune; did you mean lora_r\?/);
  withFile('gc.yaml', 'gradient_checkpointing: true\n', (path) => assert.equal(optionsFromArgv([path]).gradientCheckpointing, true));
  assert.match(refused('stage: dpo\n'), /stage dpo is not supported; finetune does stage sft only/);
  assert.match(refused('lora_target_linear: true\nlora_target_modules: [q_proj]\n'), /lora_target_linear .* sets --lora_target_modules .*give one of them/);
  assert.match(refused('datasets:\n  - path: a.json\n    type: sharegpt\n'), /type: sharegpt is not supported; supported: alpaca, completion/);
  assert.throws(() => optionsFromArgv(['--lora_rr', '4']), /unknown flag --lora_rr; did you mean --lora_r\?/);
  assert.throws(() => optionsFromArgv(['./llama-7b']), /unexpected argument "\.\/llama-7b": flags start with --/);
  assert.throws(() => parseCommandLine(generateCommand, ['--temprature', '0']), /did you mean --temperature\?/);
  assert.throws(() => parseCommandLine(generateCommand, ['--share_gradio'], commands), /generate: --share_gradio is not a flag of generate; serve takes it \(`alpaca-lora serve --help`\)/);
});

test('did you mean: slips get a suggestion, strangers none', () => {
  assert.equal(nearest('genrate', ['finetune', 'generate', 'serve']), 'generate');
  assert.equal(nearest('sevre', ['finetune', 'generate', 'serve']), 'serve');
  assert.equal(nearest('bf16', ['finetune', 'generate', 'serve']), undefined);
});

test('--config and the lone config argument work for generate too', () => {
  assert.match(helpText(generateCommand), /--config /);
  withFile('gen.yaml', 'temperature: 0.7\nnum_beams: 1\n', (path) => {
    assert.equal(parseCommandLine(generateCommand, ['--config', path]).flags.temperature, 0.7);
    const { flags } = parseCommandLine(generateCommand, [path, '--temperature', '0.2']);
    assert.deepEqual([flags.temperature, flags.num_beams, flags.top_p], [0.2, 1, 0.75], 'the command line wins; defaults fill the rest');
  });
});

test('a LLaMA-Factory config adding tokens: new_special_tokens and additional_target', () => {
  const yaml = ['model_name_or_path: ./llama', 'new_special_tokens: "<|im_start|>,<|im_end|>"', 'additional_target: embed_tokens,lm_head'].join('\n');
  withFile('new_tokens.yaml', yaml, (path) => {
    const o = optionsFromArgv([path]);
    assert.deepEqual(o.newSpecialTokens, ['<|im_start|>', '<|im_end|>']);
    assert.deepEqual(o.modulesToSave, ['embed_tokens', 'lm_head']);
  });
});
