// metrics.jsonl in output_dir: one JSON object per log or evaluation, appended as the run goes, and
// rewritten from a checkpoint's history when a run resumes (so lines past the checkpoint disappear).

import { appendFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-write.ts';
import type { LogEntry } from './loop.ts';

export class MetricsFile {
  constructor(readonly path: string) {}

  async rewrite(history: readonly LogEntry[]): Promise<void> {
    await writeFileAtomic(this.path, history.map((e) => JSON.stringify(e) + '\n').join(''));
  }

  async append(entry: LogEntry): Promise<void> {
    await appendFile(this.path, JSON.stringify(entry) + '\n');
  }
}
