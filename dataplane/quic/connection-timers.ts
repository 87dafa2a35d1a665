/**
 * Every connection's next quiche deadline in one heap, and one Node timer for the earliest.
 * A connection's deadline moves on nearly every send pass (the idle timer restarts, the loss
 * timer follows the ACKs); moving a heap entry is cheaper than the `clearTimeout` +
 * `setTimeout` pair it replaces, and an endpoint holds one `Timeout` instead of one per
 * connection.
 *
 * Owners fire only once their own deadline is reached by the clock. The Node timer may fire
 * early (its clock is the loop's cached time, and it is not moved later when the earliest
 * deadline moves later); then nothing is due and it is re-armed.
 */
import { type DeadlineEntry, DeadlineHeap } from './deadline-heap.js';

/** Deadlines that differ by less than this (ms) are treated as the same (timers have ms resolution). */
const SLACK_MS = 1;

export class ConnectionTimers<T> {
  private readonly heap = new DeadlineHeap<T>();
  private timer: NodeJS.Timeout | null = null;
  /** The deadline the Node timer was armed for (Infinity when none is). */
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(
    private readonly fire: (owner: T) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Deadlines queued (for tests and the close path). */
  get size(): number {
    return this.heap.size;
  }

  /** Sets `entry`'s deadline (the clock's ms), or clears it with null. */
  set(entry: DeadlineEntry<T>, at: number | null): void {
    if (at === null) {
      this.heap.remove(entry);
      if (this.heap.size === 0) this.disarm();
      return;
    }
    if (entry.index >= 0 && Math.abs(at - entry.deadline) < SLACK_MS) return;
    this.heap.set(entry, at);
    if (at + SLACK_MS <= this.armedFor) this.arm(at);
  }

  /** Forgets every deadline and stops the timer (the endpoint is closing). */
  clear(): void {
    this.heap.clear();
    this.disarm();
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(at - this.clock())));
    // A connection's timer never keeps the process alive on its own (as before: unref'd per connection).
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    // Collected first: an owner that fires sets its next deadline, which must wait for the next run.
    const now = this.clock();
    const due: T[] = [];
    for (let e = this.heap.popDue(now); e !== undefined; e = this.heap.popDue(now)) due.push(e.owner);
    for (const owner of due) this.fire(owner);
    const next = this.heap.peek();
    if (next !== undefined && next.deadline + SLACK_MS <= this.armedFor) this.arm(next.deadline);
  };
}
