// Talking to the Hugging Face Hub over HTTP, as huggingface_hub does: the revision's file list from
// /api/<models|datasets>/<id>/revision/<rev>, and files from /<id>/resolve/<commit>/<file> stored in the
// shared cache layout (cache.ts). HF_ENDPOINT and HF_TOKEN are honoured. Not the choice of files.

import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dirname, join, relative } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { repoFolder, type RepoType } from './cache.ts';

export interface RepoInfo {
  commit: string;
  files: string[];
}

function endpoint(): string {
  return (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

function headers(): Record<string, string> {
  const token = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  return { 'user-agent': 'alpaca-lora-ts', ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

async function get(url: string, what: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers: headers(), redirect: 'follow' });
  } catch (err) {
    throw new UserError(`${what}: cannot reach ${endpoint()} (${(err as Error).cause ?? (err as Error).message}); check the network or HF_ENDPOINT, or pass a local folder`);
  }
  if (response.status === 401 || response.status === 403) {
    throw new UserError(`${what}: the Hub refused access (HTTP ${response.status}); for a gated or private repository set HF_TOKEN to a token that may read it`);
  }
  if (response.status === 404) throw new UserError(`${what} is not on the Hub at ${endpoint()} (HTTP 404): check the id, or pass a local path`);
  if (!response.ok) throw new UserError(`${what}: the Hub answered HTTP ${response.status} for ${url}`);
  return response;
}

export async function repoInfo(type: RepoType, repoId: string, revision: string): Promise<RepoInfo> {
  const what = `${type === 'model' ? '--base_model' : '--data_path'} ${repoId}`;
  const response = await get(`${endpoint()}/api/${type}s/${repoId}/revision/${encodeURIComponent(revision)}`, what);
  const json = (await response.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  if (typeof json.sha !== 'string' || !Array.isArray(json.siblings)) throw new UserError(`${what}: the Hub's answer has no sha and file list`);
  return { commit: json.sha, files: json.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === 'string') };
}

/**
 * Streams `file` of the commit into blobs/<etag> (temporary name, then rename) and links it from the
 * snapshot. Returns the snapshot path of the file.
 */
export async function downloadFile(cache: string, type: RepoType, repoId: string, info: RepoInfo, file: string): Promise<string> {
  const repo = repoFolder(cache, type, repoId);
  const target = join(repo, 'snapshots', info.commit, file);
  const prefix = type === 'dataset' ? '/datasets' : '';
  const response = await get(`${endpoint()}${prefix}/${repoId}/resolve/${info.commit}/${file}`, `${repoId}/${file}`);
  const etag = (response.headers.get('x-linked-etag') ?? response.headers.get('etag') ?? '').replace(/^W\//, '').replaceAll('"', '');
  await mkdir(join(repo, 'blobs'), { recursive: true });
  const tmp = join(repo, 'blobs', `${randomBytes(8).toString('hex')}.incomplete`);
  const hash = createHash('sha256');
  let blob: string;
  try {
    const out = createWriteStream(tmp);
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, out);
    blob = join(repo, 'blobs', /^[\w-]+$/.test(etag) ? etag : hash.digest('hex'));
    await rename(tmp, blob);
  } finally {
    await rm(tmp, { force: true });
  }
  await mkdir(dirname(target), { recursive: true });
  await symlink(relative(dirname(target), blob), target).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return target;
}

/** Points refs/<revision> at the commit, as huggingface_hub does after a download. */
export async function writeRef(cache: string, type: RepoType, repoId: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(repoFolder(cache, type, repoId), 'refs', revision);
  await mkdir(dirname(ref), { recursive: true });
  await writeFileAtomic(ref, commit);
}
