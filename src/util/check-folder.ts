// The check that a model folder given by the user exists and is a folder, with a message saying what to
// pass instead. Not the reading of anything inside it.

import { existsSync, statSync } from 'node:fs';
import { UserError } from '../errors.ts';

/** The folder must exist and be a folder; a Hub id or a weights file gets a message saying what to pass. */
export function checkFolder(dir: string, label: string): void {
  if (!existsSync(dir)) {
    throw new UserError(`${label} does not exist: pass a local folder, or a Hub id (org/name) to fetch into the Hugging Face cache (HF_HUB_OFFLINE=1: the cache only)`);
  }
  if (!statSync(dir).isDirectory()) throw new UserError(`${label} is a file: pass the folder that holds it and config.json`);
}
