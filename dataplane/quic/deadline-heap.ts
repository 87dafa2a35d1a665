/**
 * A binary min-heap of deadlines with O(log n) insert, move and removal: the QUIC endpoint keeps
 * every connection's next quiche deadline here and runs one Node timer for the earliest, instead
 * of a `setTimeout` per connection re-created whenever its deadline moves. Pure: no clock, no
 * timers (connection-timers.ts drives it).
 */

/** One entry per owner, reused for the owner's life: `index` is its slot (-1 when not queued). */
export interface DeadlineEntry<T> {
  readonly owner: T;
  deadline: number;
  index: number;
}

export class DeadlineHeap<T> {
  private readonly slots: DeadlineEntry<T>[] = [];

  static entry<T>(owner: T): DeadlineEntry<T> {
    return { owner, deadline: 0, index: -1 };
  }

  get size(): number {
    return this.slots.length;
  }

  /** The earliest entry, or undefined when empty. */
  peek(): DeadlineEntry<T> | undefined {
    return this.slots[0];
  }

  /** Queues `e` at `deadline`, or moves it there when already queued. */
  set(e: DeadlineEntry<T>, deadline: number): void {
    if (e.index < 0) {
      e.deadline = deadline;
      e.index = this.slots.length;
      this.slots.push(e);
      this.up(e.index);
      return;
    }
    const earlier = deadline < e.deadline;
    e.deadline = deadline;
    if (earlier) this.up(e.index);
    else this.down(e.index);
  }

  /** Takes `e` out (nothing when it is not queued). */
  remove(e: DeadlineEntry<T>): void {
    const i = e.index;
    if (i < 0) return;
    e.index = -1;
    const last = this.slots.pop() as DeadlineEntry<T>;
    if (i === this.slots.length) return;
    this.slots[i] = last;
    last.index = i;
    // The moved entry may belong above or below its new slot.
    this.up(i);
    this.down(last.index);
  }

  /** Takes every entry out. */
  clear(): void {
    for (const e of this.slots) e.index = -1;
    this.slots.length = 0;
  }

  /** Removes and returns the earliest entry due at `now` (deadline ≤ now), or undefined. */
  popDue(now: number): DeadlineEntry<T> | undefined {
    const top = this.slots[0];
    if (top === undefined || top.deadline > now) return undefined;
    this.remove(top);
    return top;
  }

  private up(i: number): void {
    const s = this.slots;
    const e = s[i] as DeadlineEntry<T>;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = s[p] as DeadlineEntry<T>;
      if (parent.deadline <= e.deadline) break;
      s[i] = parent;
      parent.index = i;
      i = p;
    }
    s[i] = e;
    e.index = i;
  }

  private down(i: number): void {
    const s = this.slots;
    const n = s.length;
    const e = s[i] as DeadlineEntry<T>;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (s[r] as DeadlineEntry<T>).deadline < (s[l] as DeadlineEntry<T>).deadline ? r : l;
      const child = s[c] as DeadlineEntry<T>;
      if (child.deadline >= e.deadline) break;
      s[i] = child;
      child.index = i;
      i = c;
    }
    s[i] = e;
    e.index = i;
  }
}
