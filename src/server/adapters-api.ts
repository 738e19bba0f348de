// Adapters loaded and unloaded while serving: POST /v1/adapters {"path": DIR, "name"?: NAME} reads a PEFT adapter
// folder (only one under --adapter_dir when that is set; a relative path is taken from there) and serves it as
// model NAME (default: the folder's name); DELETE /v1/adapters/NAME stops serving it at once and frees its weights
// when no request that named it is still waiting or running. The API key check is server.ts's, as for all of /v1.

import { existsSync, realpathSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { basename, resolve, sep } from 'node:path';
import { UserError } from '../errors.ts';
import type { LoraUse } from '../model/llama.ts';
import { freeLoraAdapter } from '../model/lora.ts';
import { loadLoraAdapter } from '../model/lora-io.ts';
import { adapterChatTemplate } from '../data/chat-template-source.ts';
import type { ServerContext } from './context.ts';
import { sendJson } from './openai.ts';
import { RequestError } from './request-error.ts';
import { asObject, checkFields, stringField } from './validate.ts';

const uses = new Map<LoraUse, number>(); // requests holding an adapter
const unloaded = new Set<LoraUse>(); // deleted while in use: freed by the last release

/** Marks `lora` as used by one request; call the returned function when the request is over. */
export function holdAdapter(ctx: ServerContext, lora: LoraUse | null): () => void {
  if (!lora) return () => undefined;
  uses.set(lora, (uses.get(lora) ?? 0) + 1);
  return () => {
    const left = uses.get(lora)! - 1;
    if (left > 0) return void uses.set(lora, left);
    uses.delete(lora);
    if (unloaded.delete(lora)) freeLoraAdapter(ctx.rt.model.be, lora.adapter);
  };
}

export async function addAdapter(ctx: ServerContext, body: unknown, res: ServerResponse): Promise<void> {
  const b = asObject(body);
  checkFields(b, ['path', 'name'], {});
  const given = stringField(b, 'path');
  if (!given) throw new RequestError('"path" is required: the folder holding adapter_config.json and the adapter weights', 'path');
  const dir = ctx.adapterDir === null ? resolve(given) : resolve(ctx.adapterDir, given);
  if (!existsSync(dir)) throw new RequestError(`"path" ${given} does not exist on the server`, 'path', 404, 'adapter_not_found');
  if (ctx.adapterDir !== null) {
    const root = realpathSync(ctx.adapterDir);
    if (!realpathSync(dir).startsWith(root + sep)) throw new RequestError(`"path" ${given} is outside --adapter_dir ${ctx.adapterDir}`, 'path', 403, 'path_not_allowed');
  }
  const name = stringField(b, 'name') ?? basename(dir);
  if (!/^[\w.-]+$/.test(name)) throw new RequestError(`"name" "${name}" must be letters, digits, "_", "-" or "."`, 'name');
  if (name === ctx.rt.baseName || ctx.rt.adapters.has(name)) throw new RequestError(`a model named "${name}" is already served`, 'name', 409, 'model_exists');
  if (ctx.rt.modulesOwner) {
    throw new RequestError(`adapter "${ctx.rt.modulesOwner}" replaced the base's embed_tokens/lm_head (modules_to_save): this server takes no other adapter; start another serve for it`, 'path');
  }
  let lora: LoraUse;
  try {
    lora = { adapter: loadLoraAdapter(ctx.rt.model.be, ctx.rt.model.config, dir), dropout: 0, seed: 0 };
  } catch (err) {
    if (err instanceof UserError) throw new RequestError(err.message, 'path');
    throw err;
  }
  ctx.rt.adapters.set(name, lora);
  const template = adapterChatTemplate(dir); // the chat template it was trained with renders its requests
  if (template !== null) ctx.rt.adapterChatTemplates.set(name, template);
  sendJson(res, 201, { id: name, object: 'model', created: Math.floor(Date.now() / 1000), owned_by: 'alpaca-lora' });
}

export function removeAdapter(ctx: ServerContext, name: string, res: ServerResponse): void {
  const lora = ctx.rt.adapters.get(name);
  if (!lora) throw new RequestError(`no adapter named "${name}" is served`, null, 404, 'model_not_found');
  if (name === ctx.rt.modulesOwner) throw new RequestError(`adapter "${name}" replaced the base's embed_tokens/lm_head (modules_to_save) and cannot be unloaded: restart the server without it`, null);
  ctx.rt.adapters.delete(name);
  ctx.rt.adapterChatTemplates.delete(name);
  if (uses.has(lora)) unloaded.add(lora);
  else freeLoraAdapter(ctx.rt.model.be, lora.adapter);
  sendJson(res, 200, { id: name, object: 'model', deleted: true });
}
