/**
 * Why a remote control plane cannot be reached, in words an operator can act on. grpc-js reports
 * a refused client certificate as "No connection established … Failed to connect". One plain TLS
 * handshake with the same credentials finds out: our certificate refused (a TLS alert, or the
 * close right after the handshake that Node's TLS server does instead), a server certificate we
 * do not trust or that names another host, or nothing listening at all.
 */
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import type { ControlServer } from '../../model/config/runtime.js';

/** How long to wait after our side of the handshake for the server's verdict on our certificate. */
const VERDICT_MS = 1000;
const GIVE_UP_MS = 5000;

export interface TlsDiagnosis {
  result: Promise<string>;
  /** Stops the probe (the client is stopping); `result` then never settles. */
  cancel(): void;
}

export function diagnoseControlTls(
  t: ControlServer,
  checkIdentity: (host: string, cert: PeerCertificate) => Error | undefined,
): TlsDiagnosis {
  // Node's TLS server (spooky-control's) judges a client certificate after the handshake and
  // just closes the connection: no alert reaches us, but a close right after is that verdict.
  const closedAfter =
    "the control plane closed the connection right after the TLS handshake: it does not accept this data plane's certificate (is control.server.tls.cert issued by the CA in the control plane's control.listen.tls.client_ca?)";
  const name = t.serverName ?? t.address;
  const socket = connect({
    host: t.address,
    port: t.port,
    ca: t.caPem,
    cert: t.certPem,
    key: t.keyPem,
    ALPNProtocols: ['h2'],
    // No SNI for an IP literal (Node refuses one); the name check below is the real connection's.
    servername: isIP(name) === 0 ? name : undefined,
    checkServerIdentity: checkIdentity,
  });
  const timers: NodeJS.Timeout[] = [];
  let settle: (what: string) => void = () => {};
  const result = new Promise<string>((resolve) => {
    settle = resolve;
  });
  let done = false;
  const finish = (what: string | null) => {
    if (done) return;
    done = true;
    for (const t of timers) clearTimeout(t);
    socket.destroy();
    if (what !== null) settle(what);
  };
  timers.push(setTimeout(() => finish('no TLS answer within 5 s'), GIVE_UP_MS).unref());
  let secured = false;
  socket.once('secureConnect', () => {
    secured = true;
    // TLS 1.3: the server judges our certificate after the client's handshake is done.
    timers.push(
      setTimeout(() => finish('the TLS handshake succeeds (the failure lies elsewhere)'), VERDICT_MS).unref(),
    );
  });
  socket.on('data', () => {});
  socket.once('error', (e: NodeJS.ErrnoException) => {
    const alert = /alert ([a-z ]+)$/i.exec(e.message)?.[1];
    if (alert) finish(`the control plane refused this data plane's certificate (TLS alert: ${alert})`);
    else if (secured) finish(`${closedAfter} (${e.code ?? e.message})`);
    else
      finish(
        `${e.code === 'ECONNREFUSED' ? 'nothing listens there' : "the control plane's certificate or the connection failed"}: ${e.message}`,
      );
  });
  socket.once('close', () => finish(secured ? closedAfter : 'the connection closed before TLS was set up'));
  return { result, cancel: () => finish(null) };
}
