/**
 * The control plane's end of the control protocol: a gRPC server on a local unix socket (and, with
 * control.listen, on TCP with mutual TLS for remote data planes) where every data plane keeps one
 * bidirectional stream open. It pushes snapshots and backend states, collects ACK/NACK per version
 * and never offers a node a version that node refused.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServiceAccount } from '../../lib/system-accounts.js';
import type { ControlListen } from '../../model/config/runtime.js';
import {
  type BackendStates,
  type ControlPlaneMessage,
  type ControlPlaneServer,
  ControlPlaneService,
  type DataPlaneMessage,
  type Hello,
  type Snapshot,
  type Stats,
} from '../../proto/gen/spooky/v1/control.js';
import type { DataPlaneOutcome } from '../api/types.js';
import { KEEPALIVE_OPTIONS, startFleetListener } from './fleet-listener.js';
import { identify, peerAddress, peerHost } from './identity.js';
import type { SocketLock } from './socket-lock.js';
import { bindControlSocket, claimControlSocket } from './unix-listener.js';

export interface ConnectedDataPlane {
  nodeId: string;
  /** Where it connected from: `unix` (control.socket) or the TCP peer's address. */
  peer: string;
  /**
   * The id of its client certificate (control.listen): nodeId without the worker suffix. Null
   * over the unix socket, where the id is the data plane's own word.
   */
  certId: string | null;
  pid: number;
  build: string;
  connectedAt: Date;
  servedVersion: number;
  lastAck: { version: number; at: Date } | null;
  lastNack: { version: number; at: Date; error: string } | null;
  stats: Stats | null;
}

interface Peer {
  info: ConnectedDataPlane;
  call: grpc.ServerDuplexStream<DataPlaneMessage, ControlPlaneMessage>;
  /** Versions offered on this stream and not answered yet, with their nonce and waiter. */
  pending: Map<number, { nonce: string; done: (o: DataPlaneOutcome) => void }>;
  /** StatsRequests sent on this stream and not answered yet: request id → waiter. */
  statsWaiters: Map<number, () => void>;
}

/** What a data plane's free text (build, NACK reason, a local node id) is cut to. */
const MAX_TEXT = 2000;
/** Refused node ids remembered for log rate-limiting (then forgotten all at once). */
const MAX_REFUSALS_REMEMBERED = 1000;
/** Certified nodes remembered after they disconnect ("not connected"); the oldest goes first. */
const MAX_DEPARTED_REMEMBERED = 1000;
/**
 * How long a node that left stays "not connected": long enough to cover a rollout and a night's
 * outage report, short enough that ids which never come back (Kubernetes pods named per rollout)
 * stop cluttering every apply.
 */
export const DEPARTED_TTL_MS = 60 * 60 * 1000;

/** A certified data plane that was connected and is not now: reported until it comes back. */
export interface DepartedDataPlane {
  info: ConnectedDataPlane;
  disconnectedAt: Date;
}

export class SnapshotServer {
  /** The unix socket's server; the TCP one (control.listen) is separate, so a stream's transport is known. */
  private readonly server = new grpc.Server(KEEPALIVE_OPTIONS);
  private tcp: grpc.Server | null = null;
  /** control.socket's lock file, held from start to stop. */
  private lock: SocketLock | null = null;
  /** node id → a certified data plane seen since start that is not connected now. */
  private readonly departed = new Map<string, DepartedDataPlane>();
  private readonly peers = new Set<Peer>();
  /**
   * node id → the last version it NACKed and the process that did: never offered to that process
   * again (a restarted one, its file perhaps fixed, is offered it anew).
   */
  private readonly refused = new Map<string, { version: number; pid: number }>();
  private current: Snapshot | null = null;
  private states: BackendStates | null = null;
  private lastStatsRequest = 0;
  private helloHook: (servedVersion: number) => void = () => {};
  private admission: (hello: Hello) => string | null = () => null;
  /** node id → the refusal last logged at warn for it. */
  private readonly refusalsLogged = new Map<string, string>();

  constructor(
    private readonly socketPath: string,
    private readonly log: Logger,
  ) {
    const impl: ControlPlaneServer = { stream: (call) => this.onStream(call, false) };
    this.server.addService(ControlPlaneService, impl);
    // grpc-js prints its own `E …` lines to stderr (e.g. "No address added" next to our bind
    // error); what matters is reported by us, so its diagnostics go to the debug log.
    grpc.setLogger({ error: (...args: unknown[]) => log.debug({ grpc: args.join(' ') }, 'grpc-js') });
  }

  /**
   * Takes control.socket (its lock; nobody else listens on it) before anything else is touched:
   * spooky-control calls it first thing, start() calls it if that was not done.
   */
  async claim(): Promise<void> {
    this.lock ??= await claimControlSocket(this.socketPath);
  }

  /** Lets go of control.socket's lock (a process that exits without stop(): the exit hook). */
  releaseLock(): void {
    this.lock?.release();
    this.lock = null;
  }

  /**
   * Binds control.socket (controlplane/xds/unix-listener.ts). `dataplaneAccount`: the user and
   * group a root-started data plane drops to (security.privileges, when this process runs as
   * root): the socket becomes theirs and its directory searchable by them, or start fails
   * saying why.
   */
  async start(dataplaneAccount?: ServiceAccount): Promise<void> {
    await this.claim();
    try {
      await bindControlSocket(this.server, this.socketPath, this.log, dataplaneAccount);
    } catch (e) {
      this.releaseLock();
      throw e;
    }
  }

  /**
   * Also listens on TCP for remote data planes (control.listen): TLS with a client certificate
   * from the fleet CA required at the handshake. Resolves with the bound port.
   */
  async listenTcp(l: ControlListen): Promise<number> {
    const { server, port } = await startFleetListener(l, { stream: (call) => this.onStream(call, true) }, this.log);
    this.tcp = server;
    return port;
  }

  stop(): Promise<void> {
    for (const p of this.peers) p.call.end();
    const shut = (server: grpc.Server) =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000).unref();
      });
    // The lock goes last: a successor must not take it while this one still listens.
    return Promise.all([shut(this.server), ...(this.tcp ? [shut(this.tcp)] : [])]).then(() => this.releaseLock());
  }

  /**
   * Decides at hello whether a data plane belongs here: null admits it, a reason refuses it (the
   * stream ends with FAILED_PRECONDITION and the reason, which the data plane logs).
   */
  admitWith(check: (hello: Hello) => string | null): void {
    this.admission = check;
  }

  /** Called on every hello, before the data plane is caught up (the control plane adopts versions). */
  onHello(hook: (servedVersion: number) => void): void {
    this.helloHook = hook;
  }

  dataplanes(): ConnectedDataPlane[] {
    return [...this.peers].map((p) => p.info);
  }

  /** Certified data planes seen since start that are not connected now. */
  departedDataplanes(now = Date.now()): DepartedDataPlane[] {
    // Oldest first (insertion order): stop at the first one still within the TTL.
    for (const [id, d] of this.departed) {
      if (now - d.disconnectedAt.getTime() < DEPARTED_TTL_MS) break;
      this.departed.delete(id);
    }
    return [...this.departed.values()];
  }

  /** The snapshot every data plane should serve; offered to those behind it on connect. */
  setCurrent(snapshot: Snapshot): void {
    this.current = snapshot;
  }

  /**
   * After an apply made a version current: offers it to every connected data plane that neither
   * serves it nor has it on offer, nor refused it (one that connected during the push was caught
   * up to the version before; one that did not answer in time gets it again).
   */
  offerCurrentToStragglers(timeoutMs = 30_000): void {
    for (const p of this.peers) this.offerCurrentIfBehind(p, timeoutMs);
  }

  /** Offers the current version to `peer` unless it serves it, has it on offer, or refused it. */
  private offerCurrentIfBehind(peer: Peer, timeoutMs: number): void {
    const cur = this.current;
    if (!cur || peer.info.servedVersion === cur.version || peer.pending.has(cur.version)) return;
    const r = this.refused.get(peer.info.nodeId);
    if (r !== undefined && r.version === cur.version && r.pid === peer.info.pid) return;
    void this.offer(peer, cur, timeoutMs);
  }

  /** The full backend-state table, sent to each data plane after its snapshot. */
  setBackendStates(states: BackendStates, broadcast: boolean): void {
    this.states = states;
    if (broadcast) for (const p of this.peers) this.send(p, { message: { $case: 'backendStates', value: states } });
  }

  /**
   * Offers `snapshot` to every connected data plane and resolves with each one's answer; a data
   * plane that does not answer within `timeoutMs` counts as 'timeout'.
   */
  push(snapshot: Snapshot, timeoutMs: number): Promise<DataPlaneOutcome[]> {
    // Known nodes that are away get the version when they reconnect (catchUp); said, not awaited.
    const away = this.departedDataplanes().map(
      ({ info }): DataPlaneOutcome => ({ node_id: info.nodeId, result: 'not_connected' }),
    );
    return Promise.all([...this.peers].map((p) => this.offer(p, snapshot, timeoutMs))).then((o) => [...o, ...away]);
  }

  /**
   * Asks every data plane for fresh stats (metrics rendered now, in-flight counts) and resolves
   * once all have answered or `timeoutMs` passed; one that did not answer keeps its last stats.
   */
  refreshStats(timeoutMs: number): Promise<void> {
    const waits = [...this.peers].map(
      (peer) =>
        new Promise<void>((resolve) => {
          const requestId = ++this.lastStatsRequest;
          const timer = setTimeout(() => {
            peer.statsWaiters.delete(requestId);
            resolve();
          }, timeoutMs);
          peer.statsWaiters.set(requestId, () => {
            clearTimeout(timer);
            resolve();
          });
          this.send(peer, { message: { $case: 'statsRequest', value: { requestId } } });
        }),
    );
    return Promise.all(waits).then(() => undefined);
  }

  private offer(peer: Peer, snapshot: Snapshot, timeoutMs: number): Promise<DataPlaneOutcome> {
    const nodeId = peer.info.nodeId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        peer.pending.delete(snapshot.version);
        resolve({ node_id: nodeId, result: 'timeout' });
      }, timeoutMs);
      peer.pending.set(snapshot.version, {
        nonce: snapshot.nonce,
        done: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
      });
      this.log.debug({ node: nodeId, version: snapshot.version }, 'snapshot sent');
      this.send(peer, { message: { $case: 'snapshot', value: snapshot } });
    });
  }

  private send(peer: Peer, msg: ControlPlaneMessage): void {
    if (!peer.call.cancelled && !peer.call.writableEnded) peer.call.write(msg);
  }

  private onStream(call: grpc.ServerDuplexStream<DataPlaneMessage, ControlPlaneMessage>, viaTcp: boolean): void {
    let peer: Peer | null = null;
    call.on('data', (msg: DataPlaneMessage) => {
      const m = msg.message;
      if (!m) return;
      if (m.$case === 'hello') {
        if (peer) return; // one hello per stream
        const admitted = this.admit(call, m.value, viaTcp);
        if (!admitted) return;
        peer = {
          call,
          pending: new Map(),
          statsWaiters: new Map(),
          info: {
            nodeId: admitted.nodeId,
            peer: admitted.peer,
            certId: admitted.certId,
            pid: m.value.pid,
            build: m.value.build.slice(0, MAX_TEXT),
            connectedAt: new Date(),
            servedVersion: m.value.servedVersion,
            lastAck: null,
            lastNack: null,
            stats: null,
          },
        };
        this.peers.add(peer);
        this.departed.delete(admitted.nodeId);
        this.log.info(
          { node: admitted.nodeId, peer: admitted.peer, served_version: m.value.servedVersion },
          'data plane connected',
        );
        this.helloHook(m.value.servedVersion);
        this.catchUp(peer);
        return;
      }
      if (!peer) return; // nothing but hello is accepted before hello
      const p: Peer = peer;
      if (m.$case === 'ack') {
        p.info.servedVersion = m.value.version;
        p.info.lastAck = { version: m.value.version, at: new Date() };
        this.settle(p, m.value.version, m.value.nonce, { node_id: p.info.nodeId, result: 'ack' });
      } else if (m.$case === 'nack') {
        const { version, nonce, restartRequired, servedVersion } = m.value;
        const error = m.value.error.slice(0, MAX_TEXT);
        const outcome: DataPlaneOutcome = {
          node_id: p.info.nodeId,
          result: 'nack',
          error,
          restart_required: restartRequired,
        };
        // Only an answer to an offer counts (and is logged): unsolicited NACKs cannot flood the log.
        if (!this.settle(p, version, nonce, outcome)) return;
        p.info.servedVersion = servedVersion;
        p.info.lastNack = { version, at: new Date(), error };
        this.refused.set(p.info.nodeId, { version, pid: p.info.pid });
        this.log.warn({ node: p.info.nodeId, version, error }, 'data plane refused a snapshot');
      } else if (m.$case === 'stats') {
        p.info.stats = m.value;
      } else if (m.$case === 'statsReply') {
        p.info.stats = m.value;
        const waiter = p.statsWaiters.get(m.value.requestId);
        p.statsWaiters.delete(m.value.requestId);
        waiter?.();
      }
    });
    const gone = () => {
      if (!peer) return;
      const p: Peer = peer;
      peer = null;
      this.peers.delete(p);
      for (const [, w] of p.pending) w.done({ node_id: p.info.nodeId, result: 'timeout' });
      p.pending.clear();
      for (const [, waiter] of p.statsWaiters) waiter();
      p.statsWaiters.clear();
      if (p.info.certId !== null) {
        // A fixed identity: "not connected" means something until it comes back.
        if (this.departed.size >= MAX_DEPARTED_REMEMBERED)
          this.departed.delete(this.departed.keys().next().value as string);
        // Its last figures are history (and may be megabytes of metrics text): not kept.
        this.departed.set(p.info.nodeId, { info: { ...p.info, stats: null }, disconnectedAt: new Date() });
      }
      this.log.info({ node: p.info.nodeId }, 'data plane disconnected');
    };
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('error', gone);
    call.on('cancelled', gone);
  }

  /**
   * Who the data plane on `call` is and whether it may join: its certificate's id over TCP (the
   * fleet CA is membership; each host serves its own listener address), its own word plus the
   * listener check over the unix socket. Null: refused (the stream ends with FAILED_PRECONDITION
   * and the reason, logged here once per node and reason).
   */
  private admit(
    call: grpc.ServerDuplexStream<DataPlaneMessage, ControlPlaneMessage>,
    hello: Hello,
    viaTcp: boolean,
  ): { nodeId: string; peer: string; certId: string | null } | null {
    // A stream torn down before its hello was read has no peer left to tell anything.
    if (call.cancelled) return null;
    const peer = viaTcp ? peerAddress(call.getPeer()) : 'unix';
    const who = identify(call.getAuthContext(), viaTcp, hello.nodeId);
    let refusal: string | null = null;
    // What the refusal is logged under: over TCP never a self-declared id (unbounded, free to vary).
    let logKey = hello.nodeId.slice(0, MAX_TEXT);
    if (who.kind === 'refused') {
      logKey = peerHost(peer);
      refusal = `data plane at ${peer} refused: ${who.reason}`;
    } else if (who.kind === 'local') {
      refusal = this.admission(hello);
    } else {
      logKey = who.nodeId;
      refusal = this.twinOf(who.certId, who.nodeId, peer);
    }
    if (refusal === null) return { nodeId: logKey, peer, certId: who.kind === 'certificate' ? who.certId : null };
    // Once per node and reason at warn: a refused data plane asks again every few seconds.
    const news = this.refusalsLogged.get(logKey) !== refusal;
    if (news && this.refusalsLogged.size >= MAX_REFUSALS_REMEMBERED) this.refusalsLogged.clear();
    this.refusalsLogged.set(logKey, refusal);
    this.log[news ? 'warn' : 'debug'](
      { node: logKey, peer, pid: hello.pid, reason: refusal },
      'refused a data plane that does not belong to this control plane',
    );
    call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: refusal });
    return null;
  }

  /**
   * Another connection holding certificate `certId` that rules this one out: the same node id
   * (a copy of the certificate, or this node's old stream after a partition, which keepalive
   * drops within about 20 s), or any connection from another machine (workers of one node share
   * its address). The newcomer is refused, never the live connection replaced: a copied
   * certificate must not take a node's place.
   */
  private twinOf(certId: string, nodeId: string, peer: string): string | null {
    for (const p of this.peers) {
      if (p.info.certId !== certId) continue;
      if (p.info.nodeId === nodeId || peerHost(p.info.peer) !== peerHost(peer)) {
        return `node ${p.info.nodeId} is already connected from ${p.info.peer}: each data plane needs its own certificate (its CN is the node id); a connection of its own that broke is dropped within about 20 s`;
      }
    }
    return null;
  }

  /** Resolves the offer `version` answered with `nonce`; false for one we no longer wait for. */
  private settle(peer: Peer, version: number, nonce: string, outcome: DataPlaneOutcome): boolean {
    const w = peer.pending.get(version);
    if (!w || w.nonce !== nonce) return false;
    peer.pending.delete(version);
    w.done(outcome);
    return true;
  }

  /** A (re)connected data plane behind the current version gets it, unless it refused it. */
  private catchUp(peer: Peer): void {
    this.offerCurrentIfBehind(peer, 30_000);
    if (this.states) this.send(peer, { message: { $case: 'backendStates', value: this.states } });
  }
}
