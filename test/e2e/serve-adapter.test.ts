// `serve` answers with the adapter a request names: on the trainer fixture, the greedy completion of an adapter
// asked for by its model name (JSON and SSE) differs from the base model's and is what `generate --lora_weights`
// prints for the same prompt and settings.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { needShared, sharedPath } from '../helpers/shared.ts';
import { sseEvents, startServe, writeScaledAdapter, type RunningServer } from './serve-helper.ts';

const BASE = ['fixtures', 'trainer', 'base'];
const PROMPT = 'Hello';
const MAX_TOKENS = 8;
// The fixture's adapter (6 small steps) leaves this prompt's greedy text as the base model's; at 4x its alpha it
// changes from the first token on ("Chen Chen ..." becomes "ateurateur ..."), so a server that drops it shows.
const SCALE = 4;

const work = mkdtempSync(join(tmpdir(), 'serve-adapter-'));
const strong = join(work, 'strong');
let server: RunningServer | null = null;

before(async () => {
  if (!existsSync(sharedPath(...BASE, 'tokenizer.model'))) return; // the test then skips (or fails under CI) via needShared
  writeScaledAdapter(sharedPath('fixtures', 'trainer', 'final_adapter'), strong, SCALE);
  // `strong` is not the first adapter, so it is served only when the request names it.
  server = await startServe(['--base_model', sharedPath(...BASE), '--lora_weights', `tuned=${sharedPath('fixtures', 'trainer', 'final_adapter')},strong=${strong}`]);
});
after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The greedy completion of PROMPT by `model`, from the JSON reply or the SSE deltas joined. */
async function complete(model: string, stream: boolean): Promise<string> {
  const r = await fetch(`${server!.url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, stream }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  if (!stream) return JSON.parse(text).choices[0].text;
  const chunks = sseEvents(text).slice(0, -1) as { choices: { text: string }[] }[];
  return chunks.flatMap((c) => c.choices.map((x) => x.text)).join('');
}

test('a request naming an adapter gets its greedy answer, as `generate --lora_weights` prints it (JSON and SSE)', async (t) => {
  if (!needShared(t, ...BASE, 'tokenizer.model')) return;
  const printed = runCli(['generate', '--backend', 'js', '--base_model', sharedPath(...BASE), '--lora_weights', strong, '--prompt', PROMPT,
    '--temperature', '0', '--num_beams', '1', '--max_new_tokens', String(MAX_TOKENS)]);
  assert.equal(printed.status, 0, printed.stderr);
  for (const stream of [false, true]) {
    const adapted = await complete('strong', stream);
    assert.notEqual(adapted, await complete('base', stream), `stream ${stream}: the adapter's answer is the base model's`);
    assert.equal(`${adapted.trim()}\n`, printed.stdout, `stream ${stream}`);
  }
});
