// Checks of a JSON request body, field by field, each failure a RequestError (400) that names the field.
// A tiny schema: fields are declared with their kind and limits; unknown fields are refused, and fields we
// accept only at their neutral value (OpenAI's penalties, logprobs…) are refused when set to anything else.

import { RequestError } from './request-error.ts';

export type Body = Record<string, unknown>;

export function asObject(value: unknown, field: string | null = null): Body {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RequestError(`${field === null ? 'the request body' : `"${field}"`} must be a JSON object`, field);
  }
  return value as Body;
}

/** Refuses fields outside `known` and neutral-only fields set to something else. */
export function checkFields(body: Body, known: readonly string[], neutral: Record<string, readonly unknown[]>): void {
  for (const [name, value] of Object.entries(body)) {
    if (name in neutral) {
      const same = (allowed: unknown) => JSON.stringify(allowed) === JSON.stringify(value);
      if (value !== null && value !== undefined && !neutral[name]!.some(same)) {
        throw new RequestError(`"${name}" is not supported by this server (only ${neutral[name]!.map((v) => JSON.stringify(v)).join(' or ')})`, name);
      }
    } else if (!known.includes(name)) {
      throw new RequestError(`unrecognized request field "${name}"`, name);
    }
  }
}

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function numberField(body: Body, name: string, fallback: number, rule: NumberRule = {}): number {
  const v = body[name];
  if (v === undefined || v === null) return fallback;
  const range = `${rule.min ?? '-inf'}..${rule.max ?? 'inf'}`;
  if (typeof v !== 'number' || !Number.isFinite(v) || (rule.integer && !Number.isInteger(v))) {
    throw new RequestError(`"${name}" must be ${rule.integer ? 'an integer' : 'a number'} in ${range}, got ${JSON.stringify(v)}`, name);
  }
  if ((rule.min !== undefined && v < rule.min) || (rule.max !== undefined && v > rule.max)) {
    throw new RequestError(`"${name}" must be in ${range}, got ${v}`, name);
  }
  return v;
}

export function booleanField(body: Body, name: string, fallback: boolean): boolean {
  const v = body[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new RequestError(`"${name}" must be true or false, got ${JSON.stringify(v)}`, name);
  return v;
}

export function stringField(body: Body, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RequestError(`"${name}" must be a string, got ${JSON.stringify(v)}`, name);
  return v;
}

/** OpenAI's `stop`: a string or up to `max` non-empty strings. */
export function stopField(body: Body, max: number): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > max || !list.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 256)) {
    throw new RequestError(`"stop" must be a non-empty string or a list of at most ${max} of them (each up to 256 characters)`, 'stop');
  }
  return list as string[];
}
