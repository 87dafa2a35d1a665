/** Continuous GETs from Spooky's HTTP/3 client for e2e tests: every outcome counted, every wait bounded. */
import { H3ClientSession } from '../../dataplane/h3/client.js';

/** `p`'s value, or an error string when it rejects or takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | { error: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ error: string }>((r) => {
    timer = setTimeout(() => r({ error: `no answer in ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ value })), timeout]);
  } catch (e) {
    return { error: String(e) };
  } finally {
    clearTimeout(timer);
  }
}

export class Load {
  ok = 0;
  failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];
  readonly clients: H3ClientSession[] = [];

  /** `connections` × `streams` loops of `GET path` until `stop`. */
  static async start(port: number, connections = 4, streams = 8, path = '/load'): Promise<Load> {
    const load = new Load();
    for (let c = 0; c < connections; c++) {
      const client = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
      load.clients.push(client);
      for (let s = 0; s < streams; s++) load.loops.push(load.loop(client, path));
    }
    return load;
  }

  private async loop(client: H3ClientSession, path: string): Promise<void> {
    while (this.running) {
      const r = await within(client.fetch({ path, authority: 'localhost' }), 10_000);
      if ('value' in r && r.value.status === 200) {
        this.ok++;
        continue;
      }
      this.failures.push('value' in r ? `status ${r.value.status}: ${r.value.body.toString().trim()}` : r.error);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** Stops the loops; reports how many client connections the server closed meanwhile. */
  async stop(): Promise<{ closedConnections: number }> {
    this.running = false;
    await within(Promise.all(this.loops), 15_000);
    const closedConnections = this.clients.filter((c) => c.closed).length;
    await Promise.all(this.clients.map((c) => c.close()));
    return { closedConnections };
  }
}
