// `finetune --example`'s settings: the example's recipe (library options, example/run-example.ts) under the
// flags a user gives, each recipe key standing for the finetune flag of its snake_case name.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exampleOptions, finetuneCommand, optionsFromArgv } from '../../../src/cli/finetune.ts';
import { parseCommandLine } from '../../../src/cli/command-line.ts';
import { EXAMPLE_RECIPE } from '../../../src/example/run-example.ts';

const given = (...argv: string[]) => parseCommandLine(finetuneCommand, argv).given;
const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

test('every key of the example recipe is the camelCase name of a finetune flag', () => {
  for (const key of Object.keys(EXAMPLE_RECIPE)) assert.ok(Object.hasOwn(finetuneCommand.flags, snake(key)), `--${snake(key)} for ${key}`);
});

test('the recipe applies where no flag is given, and a given flag wins (also one equal to the default)', () => {
  const plain = exampleOptions(given('--example'));
  assert.deepEqual({ ...plain, log: null }, { ...optionsFromArgv([]), ...EXAMPLE_RECIPE, log: null });
  const o = exampleOptions(given('--example', '--lora_r', '8', '--num_epochs', '1', '--output_dir', '/tmp/x'));
  assert.equal(o.loraR, 8, 'the default value given explicitly still wins over the recipe\'s 16');
  assert.equal(o.numEpochs, 1);
  assert.equal(o.outputDir, '/tmp/x');
  assert.equal(o.loraAlpha, EXAMPLE_RECIPE.loraAlpha);
  assert.deepEqual(o.loraTargetModules, EXAMPLE_RECIPE.loraTargetModules);
});
