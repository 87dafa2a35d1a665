/** Where the HTTP/3 commands (`get`, `bench`) connect, from a URL and an optional override. */

/** Parses an https:// URL; prints the problem and returns null otherwise. */
export function parseHttpsUrl(text: string): URL | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    process.stderr.write(`spooky: ${text} is not a URL (expected https://host:port/path)\n`);
    return null;
  }
  if (url.protocol !== 'https:') {
    process.stderr.write('spooky: only https:// URLs can be used over HTTP/3\n');
    return null;
  }
  return url;
}

/** Splits `host:port`, `[v6]:port` or `host` (default port 443). */
export function splitHostPort(s: string, defaultPort = 443): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`cannot parse host and port from ${JSON.stringify(s)}`);
  return { host: m[1], port: m[2] ? Number(m[2]) : defaultPort };
}

/** The address to dial: `--connect-to` or the URL's authority; localhost means 127.0.0.1 as in gtlsclient's examples. */
export function dialTarget(url: URL, connectTo?: string): { host: string; port: number } {
  const t = splitHostPort(connectTo ?? url.host);
  return { host: t.host === 'localhost' ? '127.0.0.1' : t.host, port: t.port };
}
