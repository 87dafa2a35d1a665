// Smooth weighted round-robin, the nginx algorithm: each pick adds every eligible item's weight
// to its running score, takes the highest score, and subtracts the eligible total from the
// winner. Over any window of sum(weights) picks each item is chosen exactly weight times, and
// heavy items are interleaved rather than picked in bursts (5:1:1 gives a,a,b,a,c,a,a).

export class SmoothWeightedRoundRobin<T extends { readonly weight: number }> {
  readonly #items: readonly T[];
  // Parallel to #items; only eligible items move, as nginx leaves down peers untouched.
  readonly #current: Float64Array;

  constructor(items: readonly T[]) {
    this.#items = items.slice();
    this.#current = new Float64Array(items.length);
  }

  get items(): readonly T[] {
    return this.#items;
  }

  /**
   * Next item among those `eligible` accepts (all when omitted), or undefined when none is.
   * Items whose weight is not a positive finite number are never picked.
   */
  pick(eligible?: (item: T) => boolean): T | undefined {
    const items = this.#items;
    const current = this.#current;
    let total = 0;
    let best = -1;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const weight = item.weight;
      if (!(weight > 0) || weight === Infinity) continue;
      if (eligible !== undefined && !eligible(item)) continue;
      current[i] += weight;
      total += weight;
      // Strictly greater keeps ties on the earlier item, which gives a,b,a,b for equal weights.
      if (best === -1 || current[i] > current[best]) best = i;
    }
    if (best === -1) return undefined;
    current[best] -= total;
    return items[best];
  }
}
