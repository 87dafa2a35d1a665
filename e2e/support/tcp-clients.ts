/**
 * Clients for the TCP listener (HTTP/2 and HTTP/1.1 over TLS) that send what a test says, exactly:
 * an HTTP/1.1 exchange written byte for byte, and HTTP/2 requests whose outcome (a response or a
 * stream reset) is reported rather than thrown. Every wait is bounded.
 */
import http2 from 'node:http2';
import tls from 'node:tls';

/** One HTTP/1.1 exchange: `request` is written as is; the reply is read until the server closes. */
export function h1Exchange(port: number, request: string, timeoutMs = 5000): Promise<{ status: number; raw: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      resolve({ status: m ? Number(m[1]) : 0, raw });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('secureConnect', () => socket.write(request));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', done);
    socket.on('close', done);
  });
}

/** The final status of an HTTP/1.1 exchange (0 when none arrived); skips interim responses. */
export function finalStatus(raw: string): number {
  const all = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  return all.find((s) => s >= 200) ?? 0;
}

export type H2Outcome =
  | { kind: 'response'; status: number; body: string; interim: number }
  | { kind: 'reset'; code: number }
  | { kind: 'error'; message: string };

export function describeH2(o: H2Outcome): string {
  return o.kind === 'response' ? String(o.status) : o.kind === 'reset' ? `reset ${o.code}` : o.message;
}

/** An HTTP/2 session to the TCP listener (self-signed certificate accepted). */
export function h2Connect(port: number): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'localhost' });
  session.on('error', () => {});
  return session;
}

/** One HTTP/2 request: how it ended, within `timeoutMs`. */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  timeoutMs = 5000,
): Promise<H2Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (o: H2Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => settle({ kind: 'error', message: 'no answer' }), timeoutMs);
    let s: http2.ClientHttp2Stream;
    try {
      s = session.request(headers, { endStream: true });
    } catch (e) {
      settle({ kind: 'error', message: (e as Error).message });
      return;
    }
    let status = 0;
    let interim = 0;
    const body: Buffer[] = [];
    s.on('headers', () => interim++);
    s.on('response', (h) => {
      status = Number(h[':status']);
    });
    s.on('data', (d: Buffer) => body.push(d));
    s.on('end', () => {
      if (status > 0) settle({ kind: 'response', status, body: Buffer.concat(body).toString(), interim });
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (status > 0 && s.rstCode === http2.constants.NGHTTP2_NO_ERROR) {
        settle({ kind: 'response', status, body: Buffer.concat(body).toString(), interim });
      } else settle({ kind: 'reset', code: s.rstCode ?? -1 });
    });
  });
}
