/** `spooky get URL`: HTTP/3 requests with Spooky's own client. */
import { readFileSync } from 'node:fs';
import { type ClientResponse, H3ClientSession } from '../dataplane/h3/client.js';
import { dialTarget, parseHttpsUrl } from './target.js';

export interface GetOptions {
  insecure?: boolean;
  requests?: string;
  data?: string;
  method?: string;
  header?: string[];
  include?: boolean;
  connectTo?: string;
}

export async function runGet(urlText: string, o: GetOptions): Promise<number> {
  const url = parseHttpsUrl(urlText);
  if (!url) return 2;
  const n = Number(o.requests ?? '1');
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write('spooky: -n needs a positive integer\n');
    return 2;
  }
  const { host, port } = dialTarget(url, o.connectTo);
  const headers: Array<[string, string]> = [];
  for (const h of o.header ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) {
      process.stderr.write(`spooky: header ${JSON.stringify(h)} is not "name: value"\n`);
      return 2;
    }
    headers.push([h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()]);
  }
  const body = o.data ? readFileSync(o.data) : undefined;
  if (body) headers.push(['content-length', String(body.length)]);
  let session: H3ClientSession;
  try {
    session = await H3ClientSession.connect(host, port, { serverName: url.hostname, insecure: o.insecure });
  } catch (e) {
    process.stderr.write(`spooky: cannot connect to ${host}:${port}: ${(e as Error).message}\n`);
    return 1;
  }
  const req = {
    method: o.method ?? (body ? 'POST' : 'GET'),
    path: url.pathname + url.search,
    authority: url.host,
    headers,
    body,
  };
  const results = await Promise.allSettled(Array.from({ length: n }, () => session.fetch(req)));
  await session.close();
  let failed = 0;
  for (const r of results) {
    if (r.status === 'rejected') {
      failed++;
      process.stderr.write(`spooky: request failed: ${(r.reason as Error).message}\n`);
      continue;
    }
    print(r.value, o.include ?? false, n === 1);
  }
  if (n > 1) process.stderr.write(`${n - failed} of ${n} requests completed\n`);
  return failed > 0 ? 1 : 0;
}

function print(res: ClientResponse, include: boolean, withBody: boolean): void {
  if (include || !withBody) {
    const lines = [`HTTP/3 ${res.status}`, ...res.headers.map(([k, v]) => `${k}: ${v}`)];
    process.stdout.write(`${lines.join('\n')}\n\n`);
  }
  if (withBody) process.stdout.write(res.body);
  if (include && res.trailers) process.stdout.write(`\n${res.trailers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n`);
}
