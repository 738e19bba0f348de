// Prompt templates and the Prompter: the four built-ins carry the seed's texts, prompts are filled as
// Python's str.format fills them, getResponse splits as the seed does, and user templates load by path.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { BUILT_IN_TEMPLATES, loadTemplate, Prompter } from '../../../src/data/prompter.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';

const root = mkdtempSync(join(tmpdir(), 'prompter-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('the alpaca template is the one the reference pipeline used', (t) => {
  if (!needShared(t, 'fixtures', 'generate', 'alpaca_template.json')) return;
  const reference = JSON.parse(readFileSync(sharedPath('fixtures', 'generate', 'alpaca_template.json'), 'utf8'));
  const alpaca = loadTemplate('alpaca');
  assert.equal(alpaca.prompt_input, reference.prompt_input);
  assert.equal(alpaca.prompt_no_input, reference.prompt_no_input);
});

test('the four built-ins have the seed\'s texts', () => {
  assert.deepEqual([...BUILT_IN_TEMPLATES], ['alpaca', 'alpaca_legacy', 'alpaca_short', 'vigogne']);
  const alpaca = loadTemplate();
  assert.equal(alpaca.description, 'Template used by Alpaca-LoRA.');
  assert.equal(alpaca.response_split, '### Response:');
  const legacy = loadTemplate('alpaca_legacy');
  assert.equal(legacy.prompt_input, alpaca.prompt_input.slice(0, -1), 'legacy: the same text without the final newline');
  assert.equal(legacy.prompt_no_input, alpaca.prompt_no_input.slice(0, -1));
  assert.equal(loadTemplate('alpaca_short').prompt_no_input, '### Instruction:\n{instruction}\n\n### Response:\n');
  const vigogne = loadTemplate('vigogne');
  assert.equal(vigogne.response_split, '### Réponse:');
  assert.ok(vigogne.prompt_input.startsWith('Ci-dessous se trouve une instruction qui décrit une tâche, associée à une entrée'));
  assert.ok(vigogne.prompt_input.endsWith('### Entrée:\n{input}\n\n### Réponse:\n'));
});

test('generatePrompt picks the template by input, appends the label, and does not re-read braces in values', () => {
  const p = Prompter.load('alpaca_short');
  assert.equal(p.generatePrompt('Add.', '1 + 1'), '### Instruction:\nAdd.\n\n### Input:\n1 + 1\n\n### Response:\n');
  assert.equal(p.generatePrompt('Say hi.', ''), '### Instruction:\nSay hi.\n\n### Response:\n');
  assert.equal(p.generatePrompt('Say hi.', null, 'hi'), '### Instruction:\nSay hi.\n\n### Response:\nhi');
  assert.equal(p.generatePrompt('Use {input} and {{x}}', 'a {instruction}'), '### Instruction:\nUse {input} and {{x}}\n\n### Input:\na {instruction}\n\n### Response:\n');
});

test('getResponse returns the trimmed text after the first response_split', () => {
  const p = Prompter.load('alpaca');
  const generated = p.generatePrompt('Say hi.') + '  Hi there!\n';
  assert.equal(p.getResponse(generated), 'Hi there!');
  assert.equal(p.getResponse('a ### Response: b ### Response: c'), 'b');
  assert.throws(() => p.getResponse('no split here'), /### Response:/);
});

test('a template file is read by path; brace escapes work; bad templates are errors naming the file', () => {
  const path = join(root, 'mine.json');
  writeFileSync(path, JSON.stringify({ prompt_input: 'Q {instruction} {{ctx}} {input}\nA:', prompt_no_input: 'Q {instruction}\nA:', response_split: 'A:' }));
  const p = Prompter.load(path);
  assert.equal(p.generatePrompt('why', 'because'), 'Q why {ctx} because\nA:');
  assert.equal(p.template.description, '');

  const unknown = join(root, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ prompt_input: '{instruction} {context}', prompt_no_input: '{instruction}', response_split: 'A:' }));
  assert.throws(() => loadTemplate(unknown), (e: Error) => e instanceof UserError && e.message.includes('unknown.json prompt_input: unknown field {context}'));
  const missing = join(root, 'missing.json');
  writeFileSync(missing, JSON.stringify({ prompt_input: '{instruction}' }));
  assert.throws(() => loadTemplate(missing), /"prompt_no_input" must be a string/);
  assert.throws(() => loadTemplate('no_such_template'), (e: Error) => e instanceof UserError && /alpaca, alpaca_legacy, alpaca_short, vigogne/.test(e.message));
});
