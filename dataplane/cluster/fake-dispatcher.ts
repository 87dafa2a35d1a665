/**
 * A Dispatcher without sockets for unit tests of the cluster and its stages: it records every
 * exchange and lets the test drive the handler (respond, fail, complete) by hand.
 */
import type { Dispatcher, Fields, UpstreamExchange, UpstreamHandler, UpstreamRequest } from '../upstream/dispatcher.js';
import type { DispatchFn } from './dispatch.js';

export class FakeExchange implements UpstreamExchange {
  onRequestDrain: (() => void) | null = null;
  readonly written: Uint8Array[] = [];
  ended = false;
  trailers: Fields | null | undefined;
  aborted = false;

  constructor(
    readonly request: UpstreamRequest,
    readonly handler: UpstreamHandler,
  ) {}

  write(chunk: Uint8Array): boolean {
    this.written.push(Buffer.from(chunk)); // lent for the call only (UpstreamExchange.write)
    return true;
  }
  /** What `bodyRoom` reports (a test sets it). */
  room = Number.POSITIVE_INFINITY;
  bodyRoom(): number {
    return this.room;
  }
  end(trailers?: Fields | null): void {
    this.ended = true;
    this.trailers = trailers;
  }
  abort(): void {
    this.aborted = true;
  }
  pause(): void {}
  resume(): void {}
}

export class FakeDispatcher implements Dispatcher {
  readonly exchanges: FakeExchange[] = [];
  closed = false;

  constructor(readonly name = 'fake') {}

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange {
    const ex = new FakeExchange(request, handler);
    this.exchanges.push(ex);
    return ex;
  }
  get inFlight(): number {
    return this.exchanges.length;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  destroy(): void {
    this.closed = true;
  }
  /** The latest exchange (the test drives its handler). */
  get last(): FakeExchange {
    const ex = this.exchanges.at(-1);
    if (!ex) throw new Error(`${this.name}: nothing dispatched`);
    return ex;
  }
  /** As a dispatch function, for composing stages over it. */
  get fn(): DispatchFn {
    return (request, handler) => this.dispatch(request, handler);
  }
}

/** A handler that records what reached it, in order. */
export class RecordingHandler implements UpstreamHandler {
  readonly events: string[] = [];
  errors: Error[] = [];
  onInformational(status: number): void {
    this.events.push(`info ${status}`);
  }
  onResponseStart(status: number, _headers: Fields, endStream: boolean): void {
    this.events.push(`response ${status}${endStream ? ' end' : ''}`);
  }
  onData(chunk: Uint8Array): boolean {
    this.events.push(`data ${chunk.length}`);
    return true;
  }
  onComplete(): void {
    this.events.push('complete');
  }
  onError(error: Error & { kind?: string }): void {
    this.errors.push(error);
    this.events.push(`error ${error.kind}`);
  }
}

export function request(method = 'GET', hasBody = false): UpstreamRequest {
  return { method, path: '/', authority: 'a.example', headers: [], hasBody };
}
