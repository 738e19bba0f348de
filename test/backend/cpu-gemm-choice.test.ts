// The cpu backend's loader chooses its GEMM kernels by measurement (src/backends/native/cpu-gemm-timing.ts) at its
// first load in a process: the choice is set in the addon, printed on the backend line and cached in the folder
// XDG_CACHE_HOME names (a temporary one here), and ALPACA_CPU_GEMM still overrides it. Each case is a child process.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { needCpu } from '../helpers/cpu-backend.ts';

const dir = mkdtempSync(join(tmpdir(), 'gemm-loader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const script = `
  const { cpuLoader } = await import(${JSON.stringify(new URL('../../src/backends/native/cpu.ts', import.meta.url).href)});
  const be = cpuLoader.load();
  console.log(JSON.stringify({ line: be.describe(), table: be.addon.info().gemmTable }));`;

function loadIn(env: NodeJS.ProcessEnv): { line: string; table: string } {
  const base = { ...process.env };
  delete base.ALPACA_CPU_GEMM;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...base, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('the first load measures and caches the GEMM choice, the next one reads it', (t) => {
  const cpu = needCpu(t);
  if (!cpu) return;
  if (!cpu.addon.info().blasCore) return t.skip('built without OpenBLAS: the own GEMM is the only one');
  const cache = join(dir, 'measured');
  const first = loadIn({ XDG_CACHE_HOME: cache });
  const file = join(cache, 'alpaca-lora', 'cpu-gemm.json');
  assert.match(first.line, /measured faster here just now, cached in /);
  assert.ok(existsSync(file));
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  const [record] = Object.values(saved.machines) as { choice: Record<string, string> }[];
  const table = ['f32', 'bf16', 'f16'].map((d) => `${d} ${record!.choice[`${d}/large`]}/${record!.choice[`${d}/skinny`]}`).join(', ');
  assert.equal(first.table, table, 'the addon runs the choice that was cached');
  const second = loadIn({ XDG_CACHE_HOME: cache });
  assert.match(second.line, /measured faster here, cached in /);
  assert.equal(second.table, table);
});

test('ALPACA_CPU_GEMM overrides the measurement and writes no cache', (t) => {
  if (!needCpu(t)) return;
  const cache = join(dir, 'override');
  const r = loadIn({ XDG_CACHE_HOME: cache, ALPACA_CPU_GEMM: 'own' });
  assert.match(r.line, /own \S+ GEMM \(ALPACA_CPU_GEMM=own\)/);
  assert.equal(r.table, 'f32 own/own, bf16 own/own, f16 own/own');
  assert.ok(!existsSync(join(cache, 'alpaca-lora')));
});
