// A Ketama-style consistent-hash ring. Every backend owns max(1, round(weight)) points (weight 100,
// the config default, gives 100 points), each at hash(`${id}#${i}`). A key is served by the owner
// of the first point clockwise from hash(key); when that owner is not eligible the walk goes on
// to the next point, so an ineligible or removed backend's keys spread over its ring successors
// while every other key stays where it was.

/**
 * Stable 32-bit hash of a string: FNV-1a over its UTF-8 bytes, then murmur3's fmix32 finalizer
 * so that inputs differing in one trailing character ("a#1", "a#2") land far apart.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    // A lone surrogate is encoded as its own code unit (WTF-8): still stable.
    let bytes: number[];
    if (c < 0x800) bytes = [0xc0 | (c >> 6), 0x80 | (c & 0x3f)];
    else if (c < 0x10000) bytes = [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)];
    else bytes = [0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)];
    for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Ring points a backend of this weight owns: max(1, round(weight)); 0 for a weight that is not a positive finite number. */
export function ringPoints(weight: number): number {
  if (!(weight > 0) || weight === Infinity) return 0;
  return Math.max(1, Math.round(weight));
}

export class HashRing<T extends { readonly id: string; readonly weight: number }> {
  readonly #items: readonly T[];
  /** Point hashes, ascending. */
  readonly #hashes: Uint32Array;
  /** Parallel to #hashes: index into #items of the point's owner. */
  readonly #owners: Uint32Array;
  /** How many items own at least one point. */
  readonly #owning: number;

  /** Build the ring once per backend set; a lookup allocates at most one byte per backend. */
  constructor(items: readonly T[]) {
    this.#items = items.slice();
    const points: { hash: number; owner: number; id: string; i: number }[] = [];
    this.#items.forEach((item, owner) => {
      const n = ringPoints(item.weight);
      for (let i = 0; i < n; i++) points.push({ hash: hash32(`${item.id}#${i}`), owner, id: item.id, i });
    });
    // Collisions are broken by id then point number, so the ring does not depend on list order.
    points.sort((a, b) => a.hash - b.hash || (a.id < b.id ? -1 : a.id > b.id ? 1 : a.i - b.i));
    this.#hashes = Uint32Array.from(points, (p) => p.hash);
    this.#owners = Uint32Array.from(points, (p) => p.owner);
    this.#owning = new Set(this.#owners).size;
  }

  get items(): readonly T[] {
    return this.#items;
  }

  /** Number of points on the ring. */
  get size(): number {
    return this.#hashes.length;
  }

  /**
   * The backend serving `key`: the owner of the first point clockwise from hash32(key) that
   * `eligible` accepts (all when omitted), or undefined when no backend is eligible.
   */
  lookup(key: string, eligible?: (item: T) => boolean): T | undefined {
    const hashes = this.#hashes;
    const total = hashes.length;
    if (total === 0) return undefined;
    const target = hash32(key);
    // First point with hash >= target (binary search); past the end wraps to point 0.
    let lo = 0;
    let hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid] < target) lo = mid + 1;
      else hi = mid;
    }
    const items = this.#items;
    if (eligible === undefined) return items[this.#owners[lo % total]];
    // Each backend's filter runs at most once per lookup; the walk stops once all were refused.
    const refused = new Uint8Array(items.length);
    let refusals = 0;
    for (let k = 0; k < total && refusals < this.#owning; k++) {
      const owner = this.#owners[(lo + k) % total];
      if (refused[owner] === 1) continue;
      if (eligible(items[owner])) return items[owner];
      refused[owner] = 1;
      refusals++;
    }
    return undefined;
  }
}
