// The backends a golden test runs on: js always, and each native backend that is built here.

import { JsBackend } from '../../src/backends/js/index.ts';
import type { Backend } from '../../src/engine/backend.ts';

export interface TestBackend {
  name: string;
  make(): Backend;
}

export function testBackends(): TestBackend[] {
  return [{ name: 'js', make: () => new JsBackend() }];
}
