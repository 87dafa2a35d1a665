/**
 * A log-linear latency histogram in the spirit of HdrHistogram: values (microseconds) fall into
 * buckets 1/64 of an octave wide, so every percentile is within ~1.6% of the true value, memory
 * is fixed (~2,000 counters) and histograms from several processes merge by adding counts.
 */
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS;
const MAX_EXP = 36; // up to ~19 hours in µs
const SIZE = (MAX_EXP - SUB_BITS + 2) * SUB;

function indexOf(v: number): number {
  if (v < SUB) return v < 0 ? 0 : Math.floor(v);
  const e = Math.floor(Math.log2(v));
  const shift = e - SUB_BITS;
  const idx = (shift + 1) * SUB + (Math.floor(v / 2 ** shift) - SUB);
  return Math.min(idx, SIZE - 1);
}

/** The midpoint of a bucket, as the value it stands for. */
function bucketValue(idx: number): number {
  if (idx < SUB) return idx;
  const shift = Math.floor(idx / SUB) - 1;
  const base = (SUB + (idx % SUB)) * 2 ** shift;
  return base + 2 ** shift / 2;
}

export class Histogram {
  readonly counts: Float64Array;
  total = 0;
  max = 0;
  min = Number.POSITIVE_INFINITY;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(SIZE);
    if (counts) {
      for (let i = 0; i < SIZE; i++) {
        const c = counts[i] ?? 0;
        this.counts[i] = c;
        this.total += c;
        if (c > 0) {
          this.max = Math.max(this.max, bucketValue(i));
          this.min = Math.min(this.min, bucketValue(i));
        }
      }
    }
  }

  record(valueUs: number): void {
    this.counts[indexOf(valueUs)]++;
    this.total++;
    if (valueUs > this.max) this.max = valueUs;
    if (valueUs < this.min) this.min = valueUs;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < SIZE; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
    this.max = Math.max(this.max, other.max);
    this.min = Math.min(this.min, other.min);
  }

  /** The value at percentile p (0–100); the recorded maximum for p = 100. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    if (p >= 100) return this.max;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(bucketValue(i), this.max);
    }
    return this.max;
  }

  /** Sparse form for JSON: [index, count] pairs. */
  toSparse(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < SIZE; i++) if (this.counts[i] > 0) out.push([i, this.counts[i]]);
    return out;
  }

  static fromSparse(pairs: Array<[number, number]>): Histogram {
    const counts = new Float64Array(SIZE);
    for (const [i, c] of pairs) counts[i] = c;
    return new Histogram(counts);
  }
}
