// Generation settings with transformers' meanings: greedy when neither sampling nor beams are asked for,
// sampling with temperature / top-k / top-p warpers, or beam search. Front ends (CLI, API, page) map their
// own conventions (temperature 0 = greedy) onto these. Not the decoding loops themselves.

import { UserError } from '../errors.ts';

export interface GenerationOptions {
  maxNewTokens: number;
  doSample: boolean;
  temperature: number; // sampling only; 1 = off
  topK: number; // sampling only; 0 = off
  topP: number; // sampling only; 1 = off
  repetitionPenalty: number; // every strategy; 1 = off
  numBeams: number; // > 1 = beam search
  lengthPenalty: number; // beam search: scores are divided by generated_length ** lengthPenalty
  earlyStopping: boolean | 'never'; // beam search
  eosTokenIds: readonly number[]; // empty = never stop on a token
  padTokenId: number; // fed to rows that have finished
  seed: number;
  stop: readonly string[]; // stop strings (text-level; see text.ts)
}

export const DEFAULT_OPTIONS: GenerationOptions = {
  maxNewTokens: 128,
  doSample: false,
  temperature: 1,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  numBeams: 1,
  lengthPenalty: 1,
  earlyStopping: false,
  eosTokenIds: [],
  padTokenId: 0,
  seed: 0,
  stop: [],
};

export type Strategy = 'greedy' | 'sample' | 'beam';

export function strategyOf(o: GenerationOptions): Strategy {
  if (o.numBeams > 1) return 'beam';
  return o.doSample ? 'sample' : 'greedy';
}

/** Checks ranges; `name` maps a field to how the caller spells it (a flag or a JSON field) for the message. */
export function checkOptions(o: GenerationOptions, name: (field: keyof GenerationOptions) => string = (f) => f): void {
  const fail = (field: keyof GenerationOptions, what: string) => {
    throw new UserError(`${name(field)} ${what}, got ${JSON.stringify(o[field])}`);
  };
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) fail('maxNewTokens', 'must be an integer >= 1');
  if (o.doSample && !(o.temperature > 0 && Number.isFinite(o.temperature))) fail('temperature', 'must be a number > 0 when sampling');
  if (!Number.isInteger(o.topK) || o.topK < 0) fail('topK', 'must be an integer >= 0 (0 = off)');
  if (!(o.topP > 0 && o.topP <= 1)) fail('topP', 'must be in (0, 1]');
  if (!(o.repetitionPenalty > 0) || !Number.isFinite(o.repetitionPenalty)) fail('repetitionPenalty', 'must be a number > 0 (1 = off)');
  if (!Number.isInteger(o.numBeams) || o.numBeams < 1) fail('numBeams', 'must be an integer >= 1');
  if (!Number.isFinite(o.lengthPenalty)) fail('lengthPenalty', 'must be a number');
  if (o.numBeams > 1 && o.doSample) fail('numBeams', 'cannot be combined with sampling (beam sampling is not supported)');
  if (!Number.isSafeInteger(o.seed)) fail('seed', 'must be an integer');
}

/** The knobs the CLI, the API and the page expose. */
export interface UserSettings {
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  numBeams: number;
  repetitionPenalty: number;
  seed: number;
  stop: readonly string[];
}

/**
 * The front ends' shared convention: numBeams > 1 is beam search whatever the temperature (temperature, top-k
 * and top-p do not apply, as with the seed's GenerationConfig); otherwise temperature 0 is greedy, else sampling.
 */
export function optionsFromSettings(u: UserSettings, ids: { eosTokenIds: readonly number[]; padTokenId: number }): GenerationOptions {
  const greedy = u.temperature === 0;
  return {
    ...DEFAULT_OPTIONS,
    ...ids,
    maxNewTokens: u.maxNewTokens,
    doSample: !greedy && u.numBeams <= 1,
    temperature: greedy ? 1 : u.temperature,
    topK: u.topK,
    topP: u.topP,
    numBeams: u.numBeams,
    repetitionPenalty: u.repetitionPenalty,
    seed: u.seed,
    stop: u.stop,
  };
}
