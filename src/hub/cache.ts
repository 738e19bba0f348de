// The Hugging Face cache layout that Python's huggingface_hub uses, so files either side downloaded are
// shared: <HF_HUB_CACHE or HF_HOME/hub or ~/.cache/huggingface/hub>/<models|datasets>--org--name/ with
// refs/<revision> (a commit hash), blobs/<etag> and snapshots/<commit>/<file> -> ../../blobs/<etag>.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type RepoType = 'model' | 'dataset';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** e.g. <cache>/models--huggyllama--llama-7b */
export function repoFolder(cache: string, type: RepoType, repoId: string): string {
  return join(cache, `${type}s--${repoId.replaceAll('/', '--')}`);
}

/** The snapshot folder a revision points to, when the cache has it. */
export function cachedSnapshot(cache: string, type: RepoType, repoId: string, revision: string): string | null {
  const repo = repoFolder(cache, type, repoId);
  const ref = join(repo, 'refs', revision);
  const commit = existsSync(ref) ? readFileSync(ref, 'utf8').trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : null;
  if (!commit) return null;
  const snapshot = join(repo, 'snapshots', commit);
  return existsSync(snapshot) ? snapshot : null;
}
