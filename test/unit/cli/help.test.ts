// --help: every command shows defaults one way, `(default: X)` at the end of the line; finetune's flags in sections.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDefault, formatHelp } from '../../../src/cli/args.ts';
import { commands } from '../../../src/cli/commands.ts';
import { finetuneCommand } from '../../../src/cli/finetune.ts';

test('every command prints each default as `(default: X)` at the end of its line, unquoted, lists as [a,b]', () => {
  assert.equal(formatDefault('alpaca'), 'alpaca');
  assert.equal(formatDefault(['q_proj', 'v_proj']), '[q_proj,v_proj]');
  assert.equal(formatDefault(3e-4), '0.0003');
  assert.equal(formatDefault(''), null);
  assert.equal(formatDefault([]), null);
  for (const c of commands) {
    const lines = formatHelp(c.name, c.summary, c.flags).split('\n');
    for (const [name, spec] of Object.entries(c.flags)) {
      const line = lines.find((l) => l.startsWith(`  --${name} `));
      assert.ok(line, `${c.name} --help lists --${name}`);
      const shown = formatDefault(spec.default);
      if (shown !== null && !spec.help.includes('(default: ')) assert.ok(line.endsWith(` (default: ${shown})`), `${c.name}: ${line}`);
      assert.equal(line.match(/default:/g)?.length ?? 0, line.match(/\(default: [^"]/g)?.length ?? 0, `${c.name}: a default said another way: ${line}`);
      assert.ok((line.match(/\(default: /g)?.length ?? 0) <= 1, `${c.name}: ${line}`);
    }
  }
});

test('finetune --help lists its flags in sections: model, data, conversations, method, LoRA, vocabulary, training, checkpoints, output', () => {
  const help = formatHelp(finetuneCommand.name, finetuneCommand.summary, finetuneCommand.flags);
  const headings = help.split('\n').filter((l) => /^[A-Z][A-Za-z]*:$/.test(l));
  assert.deepEqual(headings, ['Model:', 'Data:', 'Conversations:', 'Method:', 'LoRA:', 'Vocabulary:', 'Training:', 'Checkpoints:', 'Output:']);
  const ungrouped = Object.entries(finetuneCommand.flags).filter(([, s]) => s.group === undefined).map(([n]) => n);
  assert.deepEqual(ungrouped, ['config'], 'every other flag has a section');
  const section = (flag: string) => finetuneCommand.flags[flag]!.group;
  assert.deepEqual(['base_model', 'backend', 'finetuning_type', 'lora_r', 'learning_rate', 'save_steps', 'output_dir', 'data_path', 'chat_template', 'role_tag'].map(section),
    ['model', 'model', 'method', 'LoRA', 'training', 'checkpoints', 'output', 'data', 'conversations', 'conversations']);
  for (const [flag, spec] of Object.entries(finetuneCommand.flags)) {
    if (/^(load_in|bnb_|llm_int8)/.test(flag)) assert.equal(spec.group, 'model', `quantization flag --${flag} is a model flag`);
  }
  assert.ok(help.indexOf('  --lora_r ') > help.indexOf('LoRA:') && help.indexOf('  --lora_r ') < help.indexOf('Training:'));
});
