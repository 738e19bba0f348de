// Which tensors a backend made, in which arena, and which are freed: the one arena book every backend keeps.
// A view shares its parent's lifetime, so freeing the parent (or its arena) frees the view too. Freeing a view
// releases nothing. Not the memory itself (each backend releases what `free`/`freeArena` hand back).

import { shapeString, type Arena, type Tensor } from '../engine/tensor.ts';

interface Lifetime {
  freed: boolean;
}

/** A tensor's lifetime, for every backend: tensors are never shared between lifetimes. */
const lifetimes = new WeakMap<Tensor, Lifetime>();

export class TensorLedger {
  private readonly arenas = new Map<Arena, Set<Tensor>>();

  /** Records a tensor made by alloc or uploadQuantized. */
  track<T extends Tensor>(t: T): T {
    lifetimes.set(t, { freed: false });
    let set = this.arenas.get(t.arena);
    if (!set) this.arenas.set(t.arena, (set = new Set()));
    set.add(t);
    return t;
  }

  /** Records a view of `parent`: it lives and dies with it. */
  trackView<T extends Tensor>(parent: Tensor, view: T): T {
    lifetimes.set(view, lifetimes.get(parent)!);
    return view;
  }

  /** Marks t freed; true when t owns memory the backend must now release (false for a view or a second free). */
  free(t: Tensor): boolean {
    if (!this.arenas.get(t.arena)?.delete(t)) return false;
    lifetimes.get(t)!.freed = true;
    return true;
  }

  /** Marks every tensor of the arena freed and hands them back for the backend to release. */
  freeArena(arena: Arena): Tensor[] {
    const tensors = [...(this.arenas.get(arena) ?? [])];
    for (const t of tensors) lifetimes.get(t)!.freed = true;
    this.arenas.delete(arena);
    return tensors;
  }
}

/** Whether t was made by a backend and is not freed. */
export function isLive(t: Tensor): boolean {
  return lifetimes.get(t)?.freed === false;
}

/** Throws unless t was made by a backend and is not freed; `op` and `name` say where it was used. */
export function checkLive(t: Tensor, op: string, name: string): void {
  const life = lifetimes.get(t);
  if (life && !life.freed) return;
  const what = `${name} (${t.dtype} ${shapeString(t.shape)}, arena ${t.arena})`;
  throw new Error(life ? `${op}: ${what} was used after it was freed` : `${op}: ${what} was not made by a backend's alloc, view or uploadQuantized`);
}
