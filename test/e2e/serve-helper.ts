// Shared by the serve and page tests: start `alpaca-lora serve` on a free port as a child process, read
// its URL, signal or stop it, read its output; parse a server-sent-event body, whole or as it streams; write a
// stronger copy of an adapter. Not a test file itself.

import { spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/shared.ts';

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
  /** Sends `signal` and resolves to the exit code once the process ends. */
  signal(signal: NodeJS.Signals): Promise<number | null>;
  /** What the process has printed so far. */
  output(): { stdout: string; stderr: string };
}

export function startServe(args: string[], backend: 'js' | 'cpu' = 'js', onStderr?: (text: string) => void): Promise<RunningServer> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'alpaca-lora.js'), 'serve', '--backend', backend, '--port', '0', ...args], {
    cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    onStderr?.(String(d));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const url = /serving .* at (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url) {
        const signal = (name: NodeJS.Signals) => (child.kill(name), exited);
        resolve({ url, stop: async () => void (await signal('SIGTERM')), signal, output: () => ({ stdout, stderr }) });
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)));
  });
}

/** The `data:` payloads of an SSE body, JSON-parsed except the final [DONE]. */
export function sseEvents(body: string): unknown[] {
  assertSse(body);
  return body.split('\n\n').filter((e) => e.trim()).map((e) => {
    const data = e.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    return data === '[DONE]' ? data : JSON.parse(data);
  });
}

function assertSse(body: string): void {
  if (!body.endsWith('\n\n')) throw new Error(`an SSE body ends with a blank line: ${JSON.stringify(body.slice(-40))}`);
}

/** Copies the adapter folder `from` into `to` with lora_alpha times `factor`: the same directions, a larger effect. */
export function writeScaledAdapter(from: string, to: string, factor: number): void {
  cpSync(from, to, { recursive: true });
  const config = JSON.parse(readFileSync(join(from, 'adapter_config.json'), 'utf8'));
  writeFileSync(join(to, 'adapter_config.json'), JSON.stringify({ ...config, lora_alpha: config.lora_alpha * factor }));
}

/** Polls until `check` holds or `ms` pass. */
export async function waitFor(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The `data:` payloads of a streaming response as they arrive, JSON-parsed except the final [DONE]. */
export async function* streamEvents(response: Response): AsyncGenerator<unknown> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      buffer = buffer.slice(end + 2);
      yield data === '[DONE]' ? data : JSON.parse(data);
    }
  }
}
