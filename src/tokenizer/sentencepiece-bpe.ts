// SentencePiece's BPE segmentation of a normalized string: start from characters (and
// user-defined symbols), repeatedly merge the adjacent pair whose joined piece scores highest, then map
// unknown pieces to byte pieces. A linked list of symbols plus a heap keeps it O(n log n), and a cache
// of word results makes repeated words free. Not the normalizer (see sentencepiece-tokenizer.ts).

import { MergeQueue } from './merge-queue.ts';
import { PieceType, type SentencePieceModel } from './sentencepiece-model.ts';

const utf8 = new TextEncoder();
const WORD_CACHE_LIMIT = 200_000;
const CACHED_WORD_MAX_LENGTH = 64; // longer runs (e.g. text without spaces) are rare and not worth keeping

export class SentencePieceBpe {
  private readonly pieceIds = new Map<string, number>(); // pieces BPE can produce (normal, user-defined, unused)
  private readonly reservedIds = new Map<string, number>(); // control, unknown and byte pieces
  private readonly userDefined = new Map<string, string[]>(); // first character -> symbols, longest first
  private readonly pairCache = new Map<number, number>(); // leftId * vocab + rightId -> merged id or -1
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly wordCache = new Map<string, number[]>();
  /** True when no piece joins a character to a following space symbol: words segment independently. */
  private readonly wordsAreIndependent: boolean;
  /** What a space is in the pieces: ▁, or ' ' itself for models that do not escape whitespace. */
  private readonly spaceSymbol: string;
  private readonly queue = new MergeQueue();
  private symStart = new Int32Array(256);
  private symLen = new Int32Array(256); // 0 once merged into its left neighbour
  private symNext = new Int32Array(256);
  private symPrev = new Int32Array(256);
  private symId = new Int32Array(256); // -1 for a character that is not a piece
  private symFrozen = new Uint8Array(256);

  constructor(private readonly model: SentencePieceModel) {
    model.pieces.forEach((piece, id) => {
      const type = model.types[id]!;
      const normal = type === PieceType.Normal || type === PieceType.UserDefined || type === PieceType.Unused;
      const map = normal ? this.pieceIds : this.reservedIds;
      if (!map.has(piece)) map.set(piece, id);
      if (type === PieceType.Byte && /^<0x[0-9A-F]{2}>$/.test(piece)) this.byteIds[parseInt(piece.slice(3, 5), 16)] = id;
      if (type === PieceType.UserDefined && piece.length > 0) {
        const list = this.userDefined.get(piece[0]!) ?? [];
        list.push(piece);
        list.sort((a, b) => b.length - a.length);
        this.userDefined.set(piece[0]!, list);
      }
    });
    this.spaceSymbol = model.normalizer.escapeWhitespaces ? '\u2581' : ' ';
    const crossing = new RegExp(`[^${this.spaceSymbol}]${this.spaceSymbol}`);
    this.wordsAreIndependent = ![...this.pieceIds.keys()].some((piece) => crossing.test(piece));
  }

  /**
   * Appends the ids of `text` to `out`. The text is normalized except that spaces are still ' ': they
   * become the space symbol here, word by word, so cached words are found without rewriting the text.
   */
  encode(text: string, out: number[]): void {
    if (!this.wordsAreIndependent) {
      this.encodeSymbols(text.replaceAll(' ', this.spaceSymbol), out);
      return;
    }
    // A word starts at each space that follows another character: no merge can cross that boundary.
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf(' ', start + 1);
      while (end > 0 && text.charCodeAt(end - 1) === 0x20) end = text.indexOf(' ', end + 1);
      if (end < 0) end = text.length;
      const word = text.slice(start, end);
      let ids = this.wordCache.get(word);
      if (ids === undefined) {
        ids = [];
        this.encodeSymbols(word.replaceAll(' ', this.spaceSymbol), ids);
        if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
        if (word.length <= CACHED_WORD_MAX_LENGTH) this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
      start = end;
    }
  }

  /** The BPE proper over one string. */
  private encodeSymbols(text: string, out: number[]): void {
    const count = this.splitSymbols(text);
    if (count === 0) return;
    const queue = this.queue;
    queue.clear();
    for (let i = 0; i + 1 < count; i++) this.addPair(text, i, i + 1);
    let unusedMerges: Map<string, [string, string]> | null = null;

    while (!queue.isEmpty) {
      const e = queue.pop();
      const left = queue.left[e]!;
      const right = queue.right[e]!;
      const leftLen = this.symLen[left]!;
      const rightLen = this.symLen[right]!;
      if (leftLen === 0 || rightLen === 0 || leftLen + rightLen !== queue.size[e]) continue; // stale
      const id = queue.id[e]!;
      if (this.model.types[id] === PieceType.Unused) {
        const start = this.symStart[left]!;
        unusedMerges ??= new Map();
        unusedMerges.set(text.substr(start, leftLen + rightLen), [
          text.substr(start, leftLen),
          text.substr(this.symStart[right]!, rightLen),
        ]);
      }
      this.symLen[left] = leftLen + rightLen;
      this.symId[left] = id;
      this.symLen[right] = 0;
      const after = this.symNext[right]!;
      this.symNext[left] = after;
      if (after >= 0) this.symPrev[after] = left;
      const before = this.symPrev[left]!;
      if (before >= 0) this.addPair(text, before, left);
      if (after >= 0) this.addPair(text, left, after);
    }

    for (let i = 0; i >= 0; i = this.symNext[i]!) {
      const id = this.symId[i]!;
      if (id >= 0 && this.model.types[id] !== PieceType.Unused) out.push(id);
      else this.emit(text.substr(this.symStart[i]!, this.symLen[i]!), unusedMerges, out);
    }
  }

  /** Fills the symbol arrays with one symbol per character (or user-defined symbol); returns the count. */
  private splitSymbols(text: string): number {
    if (this.symStart.length < text.length) this.growSymbols(text.length);
    let n = 0;
    for (let pos = 0; pos < text.length; n++) {
      let length = 1;
      let frozen = 0;
      const user = this.userDefined.size > 0 ? this.userDefined.get(text[pos]!) : undefined;
      const match = user?.find((s) => text.startsWith(s, pos));
      if (match) {
        length = match.length;
        frozen = 1;
      } else {
        const c = text.charCodeAt(pos);
        if (c >= 0xd800 && c <= 0xdbff && pos + 1 < text.length) {
          const d = text.charCodeAt(pos + 1);
          if (d >= 0xdc00 && d <= 0xdfff) length = 2;
        }
      }
      this.symStart[n] = pos;
      this.symLen[n] = length;
      this.symPrev[n] = n - 1;
      this.symNext[n] = pos + length < text.length ? n + 1 : -1;
      this.symId[n] = this.pieceIds.get(text.substr(pos, length)) ?? -1;
      this.symFrozen[n] = frozen;
      pos += length;
    }
    return n;
  }

  /** Queues the merge of symbols `left` and `right` when their joined text is a piece. */
  private addPair(text: string, left: number, right: number): void {
    if (this.symFrozen[left] || this.symFrozen[right]) return;
    const leftId = this.symId[left]!;
    const rightId = this.symId[right]!;
    const size = this.symLen[left]! + this.symLen[right]!;
    let merged: number;
    if (leftId >= 0 && rightId >= 0) {
      const key = leftId * this.model.pieces.length + rightId;
      const cached = this.pairCache.get(key);
      if (cached === undefined) {
        merged = this.pieceIds.get(text.substr(this.symStart[left]!, size)) ?? -1;
        this.pairCache.set(key, merged);
      } else {
        merged = cached;
      }
    } else {
      merged = this.pieceIds.get(text.substr(this.symStart[left]!, size)) ?? -1;
    }
    if (merged >= 0) this.queue.push(this.model.scores[merged]!, left, right, size, merged);
  }

  /** Output for a final symbol that is not a plain piece: undo unused merges, byte-fallback unknowns. */
  private emit(piece: string, unusedMerges: Map<string, [string, string]> | null, out: number[]): void {
    const id = this.reservedIds.get(piece) ?? this.pieceIds.get(piece) ?? this.model.unkId;
    if (this.model.types[id] === PieceType.Unused) {
      const halves = unusedMerges?.get(piece);
      if (halves) {
        this.emit(halves[0], unusedMerges, out);
        this.emit(halves[1], unusedMerges, out);
        return;
      }
    }
    if (id !== this.model.unkId || !this.model.byteFallback) {
      out.push(id);
      return;
    }
    for (const byte of utf8.encode(piece)) {
      const byteId = this.byteIds[byte]!;
      out.push(byteId >= 0 ? byteId : this.model.unkId);
    }
  }

  private growSymbols(n: number): void {
    const size = Math.max(n, this.symStart.length * 2);
    this.symStart = new Int32Array(size);
    this.symLen = new Int32Array(size);
    this.symNext = new Int32Array(size);
    this.symPrev = new Int32Array(size);
    this.symId = new Int32Array(size);
    this.symFrozen = new Uint8Array(size);
  }
}
