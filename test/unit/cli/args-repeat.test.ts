// A flag given twice: list flags add up, any other flag is an error naming it (it used to keep the last value).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFlags, UsageError, type FlagSpecs } from '../../../src/cli/args.ts';

const specs: FlagSpecs = {
  lora_weights: { type: 'string', help: '' },
  lora_target_modules: { type: 'list', default: ['q_proj', 'v_proj'], help: '' },
  cutoff_len: { type: 'number', default: 256, help: '' },
  train_on_inputs: { type: 'boolean', default: true, help: '' },
};
const parse = (...argv: string[]) => parseFlags('finetune', argv, specs).flags;

test('a repeated list flag adds up, whatever its spelling', () => {
  assert.deepEqual(parse('--lora_target_modules', '[q_proj,k_proj]', '--lora-target-modules=v_proj').lora_target_modules, ['q_proj', 'k_proj', 'v_proj']);
  assert.deepEqual(parse().lora_target_modules, ['q_proj', 'v_proj']);
});

test('a repeated scalar flag is an error naming it, in any spelling or form', () => {
  for (const argv of [
    ['--lora_weights', 'a', '--lora_weights', 'b'],
    ['--lora_weights=a', '--lora-weights', 'b'],
    ['--cutoff_len', '8', '--cutoff_len', '8'],
    ['--train_on_inputs', '--no_train_on_inputs'],
  ]) {
    const name = argv[0]!.replace(/=.*/, '').replace(/^--/, '');
    assert.throws(() => parse(...argv), (e: Error) => e instanceof UsageError && e.message.includes(`--${name} is given more than once`), argv.join(' '));
  }
  assert.equal(parse('--lora_weights', 'a').lora_weights, 'a');
});
