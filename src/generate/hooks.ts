// What a generation loop returns and listens to: the per-row result, the hooks (streaming, stop strings,
// cancellation), and the pause between steps that keeps a server responsive. Not the loops themselves.

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface Generated {
  tokens: number[]; // the new tokens; an EOS that ended the row is included
  finishReason: FinishReason; // 'stop': EOS or a stop string
}

export interface GenerateHooks {
  /** Sees each new token as it is chosen (not under beam search); returning true ends that row. */
  onToken?: (row: number, id: number) => boolean | void;
  /** Beam search: whether a candidate's new tokens end in a stop string. */
  isStopped?: (tokens: readonly number[]) => boolean;
  /** Checked between steps; an aborted generation returns what it has, finishReason 'cancelled'. */
  signal?: AbortSignal;
  /** The request has left the queue and joined the batch. */
  onStart?: () => void;
}

/** Lets queued I/O (new requests, disconnects) run between steps of a synchronous backend. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
