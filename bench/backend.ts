#!/usr/bin/env node
/**
 * The benchmark's backend: a minimal cleartext HTTP/2 server in its own process, so the proxy's
 * CPU is measured alone. Prints its port on stdout. Routes:
 *   /small      1 KiB            /1mib    1 MiB
 *   /upload     drains the body, answers 1 KiB
 *   /slow       1 KiB after 50 ms
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

const SMALL = Buffer.alloc(1024, 'b');
const MIB = Buffer.alloc(1024 * 1024, 'm');
const HEAD_SMALL = { ':status': 200, 'content-type': 'application/octet-stream', 'content-length': '1024' };

// Node's default session memory cap (10 MB) answers ENHANCE_YOUR_CALM and drops the session once
// a few thousand requests are in flight on it: the benchmark measures the proxy, not that cap.
const server = http2.createServer({
  maxSessionMemory: 1024,
  settings: { maxConcurrentStreams: 10000, initialWindowSize: 4 * 1024 * 1024 },
});
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const path = headers[':path'];
  if (path === '/1mib') {
    stream.respond({
      ':status': 200,
      'content-type': 'application/octet-stream',
      'content-length': String(MIB.length),
    });
    stream.end(MIB);
  } else if (path === '/upload') {
    stream.on('data', () => {});
    stream.on('end', () => {
      if (stream.destroyed || stream.closed || stream.headersSent) return;
      stream.respond(HEAD_SMALL);
      stream.end(SMALL);
    });
  } else if (path === '/slow') {
    stream.resume();
    setTimeout(() => {
      if (stream.destroyed || stream.closed) return;
      stream.respond(HEAD_SMALL);
      stream.end(SMALL);
    }, 50);
  } else {
    stream.resume();
    stream.respond(HEAD_SMALL);
    stream.end(SMALL);
  }
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
