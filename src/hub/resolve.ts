// Turns --base_model into a local folder: a folder is used as it is.
import { existsSync } from 'node:fs';

export async function resolveModelDir(idOrPath: string, _log: (line: string) => void): Promise<string> {
  if (existsSync(idOrPath)) return idOrPath;
  return idOrPath;
}
