/**
 * The two clocks of an upstream exchange, the same for HTTP/2 and HTTP/1.1: until the response
 * head (`headers_timeout`, 504), then between body bytes in either direction (`idle_timeout`).
 * The idle timer is refreshed, never re-created, per chunk.
 */
import type { UpstreamTimeouts } from './dispatcher.js';
import { UpstreamError } from './errors.js';

export class ExchangeTimers {
  private headers: NodeJS.Timeout | null = null;
  private idle: NodeJS.Timeout | null = null;

  constructor(
    private readonly timeouts: UpstreamTimeouts,
    private readonly origin: string,
    private readonly onTimeout: (error: UpstreamError) => void,
  ) {}

  /** The request is on its way: the response head is due within headersMs. */
  startHeaders(): void {
    this.headers = setTimeout(() => {
      this.headers = null;
      this.onTimeout(
        new UpstreamError(
          'headers_timeout',
          `no response headers from ${this.origin} within ${this.timeouts.headersMs} ms`,
        ),
      );
    }, this.timeouts.headersMs);
  }

  /** The response head arrived: from now on only idleness counts. */
  responded(): void {
    if (this.headers) clearTimeout(this.headers);
    this.headers = null;
    if (this.idle) return;
    this.idle = setTimeout(() => {
      this.idle = null;
      this.onTimeout(new UpstreamError('idle_timeout', `${this.origin} idle for ${this.timeouts.idleMs} ms`));
    }, this.timeouts.idleMs);
  }

  /** Body bytes moved (either direction). */
  activity(): void {
    this.idle?.refresh();
  }

  clear(): void {
    if (this.headers) clearTimeout(this.headers);
    if (this.idle) clearTimeout(this.idle);
    this.headers = null;
    this.idle = null;
  }
}
