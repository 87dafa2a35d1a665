/**
 * A small gRPC service for the gRPC tests, served by a real `@grpc/grpc-js` server over h2c
 * (cleartext HTTP/2, as Spooky's backends speak it). Messages are raw bytes (gRPC frames carry
 * opaque messages), so no .proto is needed. Methods of `spooky.test.Echo`:
 *   Unary         `hello <request>`; a request `missing` fails NOT_FOUND before any response
 *                 metadata (a trailers-only response) with trailing metadata `x-missing-key`
 *   Count         server streaming: `N` gives `#1` … `#N`; `N!` fails RESOURCE_EXHAUSTED after them
 *   Join          client streaming: the messages joined with `+`
 *   Shout         bidi streaming: each message upper-cased, as it arrives
 *   Slow          unary that answers only after 10 s; records the calls the server saw cancelled
 */
import * as grpc from '@grpc/grpc-js';

export const SERVICE = 'spooky.test.Echo';
export const path = (method: string): string => `/${SERVICE}/${method}`;

const raw = (b: Buffer): Buffer => b;

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: path(name),
    requestStream,
    responseStream,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  };
}

export const definition: grpc.ServiceDefinition = {
  Unary: method('Unary', false, false),
  Count: method('Count', false, true),
  Join: method('Join', true, false),
  Shout: method('Shout', true, true),
  Slow: method('Slow', false, false),
};

export interface EchoBackend {
  /** `http://127.0.0.1:port` (h2c). */
  origin: string;
  /** Requests of `Slow` that have arrived (by request text). */
  slowStarted: Set<string>;
  /** Requests of `Slow` the server saw cancelled (by request text). */
  slowCancelled: Set<string>;
  close(): Promise<void>;
}

export async function startEchoBackend(): Promise<EchoBackend> {
  const slowStarted = new Set<string>();
  const slowCancelled = new Set<string>();
  const server = new grpc.Server();
  const implementation: grpc.UntypedServiceImplementation = {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      if (text === 'missing') {
        const metadata = new grpc.Metadata();
        metadata.set('x-missing-key', text);
        callback({ code: grpc.status.NOT_FOUND, details: `no such key: ${text}`, metadata });
        return;
      }
      callback(null, Buffer.from(`hello ${text}`));
    },
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const text = call.request.toString();
      const n = Math.min(Number.parseInt(text, 10) || 0, 1000);
      for (let i = 1; i <= n; i++) call.write(Buffer.from(`#${i}`));
      // grpc-js turns an 'error' on a server stream into the call's status, sent after the messages.
      if (text.endsWith('!')) call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'quota spent' });
      else call.end();
    },
    Join: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const parts: string[] = [];
      call.on('data', (m: Buffer) => parts.push(m.toString()));
      call.on('end', () => callback(null, Buffer.from(parts.join('+'))));
    },
    Shout: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(Buffer.from(m.toString().toUpperCase())));
      call.on('end', () => call.end());
    },
    Slow: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      slowStarted.add(text);
      const timer = setTimeout(() => callback(null, Buffer.from(`late ${text}`)), 10_000);
      call.on('cancelled', () => {
        clearTimeout(timer);
        slowCancelled.add(text);
      });
    },
  };
  server.addService(definition, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    origin: `http://127.0.0.1:${port}`,
    slowStarted,
    slowCancelled,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}

/** A gRPC message on the wire: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
export function grpcFrame(message: string): Buffer {
  const body = Buffer.from(message);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** The messages of a gRPC body (length-prefixed frames); throws on a truncated or compressed one. */
export function grpcMessages(body: Buffer): string[] {
  const out: string[] = [];
  let off = 0;
  while (off < body.length) {
    if (off + 5 > body.length) throw new Error(`truncated gRPC frame header at ${off}`);
    if (body[off] !== 0) throw new Error(`compressed gRPC frame at ${off}`);
    const len = body.readUInt32BE(off + 1);
    if (off + 5 + len > body.length) throw new Error(`truncated gRPC message at ${off}`);
    out.push(body.subarray(off + 5, off + 5 + len).toString());
    off += 5 + len;
  }
  return out;
}
