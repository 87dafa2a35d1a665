/**
 * A fleet on loopback, for e2e/fleet.test.ts and the benchmark's fleet leg: spooky-control with
 * control.listen (TCP, mutual TLS) and data planes with control.server, each on its own port
 * (listen.port 0) with its own certificate from a test CA.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IssuedCertificate, TestPki } from './pki.js';

export class FleetConfigs {
  /** The control plane's certificate, for the names given (127.0.0.1 unless told otherwise). */
  readonly controlCert: IssuedCertificate;
  /** spooky-control's port on control.listen, once known (its `listening` line). */
  controlPort = 0;

  constructor(
    private readonly dir: string,
    readonly pki: TestPki,
    private readonly listener: { certFile: string; keyFile: string },
    controlNames: { dns?: string[]; ip?: string[] } = { ip: ['127.0.0.1'] },
  ) {
    this.controlCert = pki.issue('control', '/CN=spooky-control', controlNames);
  }

  /** One backend `web` at `origin`, as the whole `upstream:` section. */
  static pool(origin: string): string {
    return `  web:\n    backends: [{ id: web, address: "${origin}" }]\n`;
  }

  /** A whole config: `control` is the indented body of its control section. */
  config(upstream: string, control: string, workers = 1): string {
    return `listen:
  address: 127.0.0.1
  port: 0
  tls: { cert: ${this.listener.certFile}, key: ${this.listener.keyFile} }
  tcp: { enabled: false }
upstream:
${upstream}
log: { level: info, format: json, access_log: false }
security: { privileges: { enabled: false } }
performance: { workers: ${workers} }
observability:
  control_api: { port: 0 }
  metrics: { enabled: false }
control:
${control}`;
  }

  /** spooky-control's control section: its socket and state here, control.listen on port 0. */
  get controlSection(): string {
    return `  socket: ${join(this.dir, 'control.sock')}
  state_dir: ${join(this.dir, 'state')}
  listen:
    enabled: true
    address: 127.0.0.1
    port: 0
    tls: { cert: ${this.controlCert.cert}, key: ${this.controlCert.key}, client_ca: ${this.pki.ca} }
`;
  }

  /** The state directory of data plane `name` (created). */
  nodeDir(name: string): string {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /**
   * Data plane `name`'s control section: its state directory, control.server at the control
   * plane with certificate `id`; `serverName` checks the control plane's DNS name rather than
   * the IP dialled.
   */
  nodeSection(name: string, id: IssuedCertificate, serverName?: string): string {
    const name_ = serverName === undefined ? '' : `, server_name: ${serverName}`;
    return `  state_dir: ${this.nodeDir(name)}
  server:
    enabled: true
    address: 127.0.0.1
    port: ${this.controlPort}
    tls: { ca: ${this.pki.ca}, cert: ${id.cert}, key: ${id.key}${name_} }
`;
  }
}
