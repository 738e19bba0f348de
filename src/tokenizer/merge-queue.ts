// A binary max-heap of BPE merge candidates, ordered as SentencePiece orders them: higher score first,
// then the leftmost pair. Typed arrays and no per-push allocation; stale entries are the caller's to skip.

export class MergeQueue {
  score = new Float64Array(64);
  left = new Int32Array(64);
  right = new Int32Array(64);
  size = new Int32Array(64); // UTF-16 length of the merged piece, to detect stale entries
  id = new Int32Array(64); // the merged piece's id
  private heap = new Int32Array(64); // entry indices
  private entries = 0;
  private length = 0;

  clear(): void {
    this.entries = 0;
    this.length = 0;
  }

  get isEmpty(): boolean {
    return this.length === 0;
  }

  push(score: number, left: number, right: number, size: number, id: number): void {
    if (this.entries === this.score.length) this.grow();
    const e = this.entries++;
    this.score[e] = score;
    this.left[e] = left;
    this.right[e] = right;
    this.size[e] = size;
    this.id[e] = id;
    let i = this.length++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(e, this.heap[parent]!)) break;
      this.heap[i] = this.heap[parent]!;
      i = parent;
    }
    this.heap[i] = e;
  }

  /** Removes the best entry and returns its index into the field arrays. */
  pop(): number {
    const top = this.heap[0]!;
    const last = this.heap[--this.length]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.length) break;
      if (child + 1 < this.length && this.before(this.heap[child + 1]!, this.heap[child]!)) child++;
      if (!this.before(this.heap[child]!, last)) break;
      this.heap[i] = this.heap[child]!;
      i = child;
    }
    this.heap[i] = last;
    return top;
  }

  private before(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa > sb || (sa === sb && this.left[a]! < this.left[b]!);
  }

  private grow(): void {
    const n = this.score.length * 2;
    const grow32 = (a: Int32Array) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    const score = new Float64Array(n);
    score.set(this.score);
    this.score = score;
    this.left = grow32(this.left);
    this.right = grow32(this.right);
    this.size = grow32(this.size);
    this.id = grow32(this.id);
    this.heap = grow32(this.heap);
  }
}
