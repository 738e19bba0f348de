// loadTokenizer: which file of a model folder it opens, what tokenizer_config.json changes, and the
// errors for folders without a tokenizer.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UserError } from '../../../src/errors.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf-tokenizer.ts';
import { loadTokenizer } from '../../../src/tokenizer/load.ts';
import { SentencePieceTokenizer } from '../../../src/tokenizer/sentencepiece-tokenizer.ts';
import { needShared, sharedPath } from '../../helpers/shared.ts';
import { tinyId, tinyModel } from './tiny-sentencepiece.ts';

const root = mkdtempSync(join(tmpdir(), 'load-tokenizer-'));
after(() => rmSync(root, { recursive: true, force: true }));

function folder(name: string, files: Record<string, string | Uint8Array>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

const model = tinyModel([{ piece: '▁a' }]);

test('a folder with only tokenizer.model gets the SentencePiece reader with LlamaTokenizer defaults', () => {
  const tokenizer = loadTokenizer(folder('sp-only', { 'tokenizer.model': model }));
  assert.ok(tokenizer instanceof SentencePieceTokenizer);
  assert.match(tokenizer.source, /sp-only\/tokenizer\.model$/);
  assert.deepEqual(tokenizer.encode('a'), [1, tinyId(0)]);
});

test('tokenizer_config.json sets add_bos_token, add_eos_token and the pad token', () => {
  const config = JSON.stringify({ add_bos_token: false, add_eos_token: true, pad_token: { content: '<unk>' }, eos_token: '' });
  const tokenizer = loadTokenizer(folder('sp-config', { 'tokenizer.model': model, 'tokenizer_config.json': config }));
  assert.deepEqual(tokenizer.encode('a'), [tinyId(0), 2]);
  assert.equal(tokenizer.padId, 0);
  assert.equal(tokenizer.eosId, 2, 'an empty eos_token (as decapoda-research ships) falls back to the model\'s');
});

test('a folder with tokenizer.json uses it, as transformers does', (t) => {
  if (!needShared(t, 'fixtures', 'tokenizers', 'llama2-hf5', 'tokenizer.json')) return;
  const dir = folder('both', { 'tokenizer.model': model });
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) symlinkSync(sharedPath('fixtures', 'tokenizers', 'llama2-hf5', file), join(dir, file));
  const tokenizer = loadTokenizer(dir);
  assert.ok(tokenizer instanceof HfTokenizer);
  assert.deepEqual(tokenizer.encode('Hello world'), [1, 15043, 3186]);
});

test('folders without a tokenizer, and broken config files, are errors that say what to pass', () => {
  const empty = folder('empty', {});
  assert.throws(() => loadTokenizer(empty), (e: Error) => e instanceof UserError && e.message.includes('neither tokenizer.json nor tokenizer.model'));
  assert.throws(() => loadTokenizer(join(root, 'missing')), (e: Error) => e instanceof UserError && /is not a folder/.test(e.message));
  const broken = folder('broken-config', { 'tokenizer.model': model, 'tokenizer_config.json': '{"add_bos_token": tru' });
  assert.throws(() => loadTokenizer(broken), (e: Error) => e instanceof UserError && /tokenizer_config\.json is not valid JSON/.test(e.message));
});
