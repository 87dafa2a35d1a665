/**
 * The data-plane supervisor (`performance.workers` above 1): it forks the workers, each a full
 * spooky-dataplane process on the same port (SO_REUSEPORT), restarts one that dies while the
 * others keep serving, hands out the keys every worker must share (session tickets, Retry
 * tokens) and the hand-over ports of connection-id steering, and turns SIGTERM/SIGINT into a
 * drain of every worker. It reads no network input. Like nginx's master it keeps the user it
 * was started as, so that a restarted worker can bind a privileged port again; each worker
 * drops privileges itself once bound. Why processes and not worker_threads: docs/decisions.md.
 */

import { type ChildProcess, fork } from 'node:child_process';
import dgram from 'node:dgram';
import net, { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { currentAllocator } from '../../lib/allocator.js';
import { newRetryTokenKey } from '../quic/retry-token.js';
import { TicketKeyRotation } from '../quic/ticket-keys.js';
import { isToSupervisor, type ToWorker } from './protocol.js';

/** How often the supervisor checks whether the ticket key is due for rotation. */
const TICKET_KEY_CHECK_MS = 60_000;
/** A restarted worker waits this long, doubling per crash up to RESTART_MAX_MS. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5_000;
/** How long past shutdown_drain_timeout_ms the supervisor waits for its workers to exit. */
const DRAIN_GRACE_MS = 5_000;
/** A worker that ran this long before dying restarts after RESTART_MIN_MS again. */
const STABLE_MS = 30_000;

export interface SupervisorOptions {
  /** The YAML file and flags each worker is started with. */
  file: string;
  statsIntervalMs: number;
  workers: number;
  /** `--workers` as given to the supervisor, passed on to each worker. */
  pinned?: 'auto' | number;
  /** performance.shutdown_drain_timeout_ms: past it (and a grace), workers still running are killed. */
  drainTimeoutMs: number;
  listen: { address: string; port: number; tcp: boolean };
  log: Logger;
}

interface Slot {
  index: number;
  child: ChildProcess | null;
  handoffPort: number;
  startedAt: number;
  restartDelayMs: number;
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

/**
 * The listen port, bound (UDP and TCP, with SO_REUSEPORT) until the first worker has it too: the
 * OS's choice for `listen.port: 0`, and for a fixed port the proof that the workers can bind it
 * (a port in use or below 1024 without the capability fails here, once, before any fork).
 */
async function reservePort(address: string, wanted: number, tcp: boolean): Promise<{ port: number; release(): void }> {
  // SO_REUSEPORT would let this supervisor join another one's sockets on the port (same user) and
  // share its traffic: a plain bind first proves that nobody holds the port.
  if (wanted !== 0) await probeExclusive(address, wanted, tcp);
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4', reusePort: true });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address, port: wanted }, () => resolve());
    });
    const port = udp.address().port;
    if (!tcp) return { port, release: () => udp.close() };
    // Connections that reach the placeholder in the moment before a worker listens are closed.
    const server = net.createServer((s) => s.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address, port, reusePort: true }, () => resolve());
      });
      return {
        port,
        release: () => {
          udp.close();
          server.close();
        },
      };
    } catch (e) {
      udp.close();
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || wanted !== 0 || attempt >= 5) throw e;
    }
  }
}

/** Binds `port` without SO_REUSEPORT (UDP, and TCP when asked) and lets it go: EADDRINUSE if held. */
async function probeExclusive(address: string, port: number, tcp: boolean): Promise<void> {
  const udp = dgram.createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((r) => udp.close(() => r()));
  if (!tcp) return;
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port }, () => resolve());
  });
  await new Promise<void>((r) => server.close(() => r()));
}

export async function runSupervisor(o: SupervisorOptions): Promise<void> {
  const { log } = o;
  let reserved: { port: number; release(): void } | null = await reservePort(
    o.listen.address,
    o.listen.port,
    o.listen.tcp,
  );
  const port = reserved.port;
  const ticketKeys = new TicketKeyRotation(performance.now());
  const retryKey = newRetryTokenKey().toString('base64');
  const slots: Slot[] = Array.from({ length: o.workers }, (_, index) => ({
    index,
    child: null,
    handoffPort: 0,
    startedAt: 0,
    restartDelayMs: RESTART_MIN_MS,
    lastExit: null,
  }));
  let stopping = false;
  let started = false;
  /** A worker failed before all were listening: the supervisor exits 1. */
  let failed = false;

  // A worker that died a moment ago may still look connected: a failed send is its exit's business.
  const send = (slot: Slot, m: ToWorker) => {
    if (slot.child?.connected)
      slot.child.send(m, (err) => err && log.debug({ worker: slot.index, err: err.message }, 'IPC send failed'));
  };
  const broadcastPeers = () => {
    const ports = slots.map((s) => s.handoffPort);
    for (const s of slots) send(s, { type: 'peers', ports });
  };

  const spawnWorker = (slot: Slot) => {
    const args = [
      '--config',
      o.file,
      '--stats-interval-ms',
      String(o.statsIntervalMs),
      '--worker-index',
      String(slot.index),
      '--worker-count',
      String(o.workers),
      '--worker-port',
      String(port),
      ...(o.pinned === undefined ? [] : ['--workers', String(o.pinned)]),
    ];
    let child: ChildProcess;
    try {
      child = fork(process.argv[1] as string, args, {
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
    } catch (e) {
      // EAGAIN, ENOMEM: try again later, as for a worker that died.
      slot.lastExit = { code: null, signal: null };
      log.error({ worker: slot.index, err: (e as Error).message }, 'cannot start a worker');
      if (!started) return failStart(slot);
      return scheduleRestart(slot);
    }
    child.on('error', (e) => log.warn({ worker: slot.index, err: e.message }, 'worker process error'));
    slot.child = child;
    slot.handoffPort = 0;
    slot.startedAt = performance.now();
    child.on('message', (m) => {
      if (!isToSupervisor(m) || slot.child !== child) return;
      if (m.type === 'ready') {
        send(slot, { type: 'keys', ticketKey: Buffer.from(ticketKeys.current).toString('base64'), retryKey });
        return;
      }
      if (m.type === 'draining') {
        // An apply may have changed shutdown_drain_timeout_ms since this supervisor read it.
        drainTimeoutMs = Math.max(drainTimeoutMs, m.timeoutMs);
        if (stopping) armKill();
        return;
      }
      slot.handoffPort = m.handoffPort;
      reserved?.release();
      reserved = null;
      log.info({ worker: slot.index, pid: child.pid }, 'worker listening');
      broadcastPeers();
      onListening();
      // Stopping began while it started: its drain message may have come before it listened.
      if (stopping) send(slot, { type: 'drain' });
    });
    child.on('exit', (code, signal) => {
      if (slot.child !== child) return;
      slot.child = null;
      slot.handoffPort = 0;
      slot.lastExit = { code, signal };
      // Its hand-over port is closed now and must not be trusted (another process could take it).
      broadcastPeers();
      if (stopping) return onStopped();
      if (!started) return failStart(slot);
      if (performance.now() - slot.startedAt >= STABLE_MS) slot.restartDelayMs = RESTART_MIN_MS;
      log.error(
        { worker: slot.index, pid: child.pid, code, signal, restart_in_ms: slot.restartDelayMs },
        'worker died; restarting it',
      );
      scheduleRestart(slot);
    });
  };

  const scheduleRestart = (slot: Slot) => {
    const delay = slot.restartDelayMs;
    slot.restartDelayMs = Math.min(RESTART_MAX_MS, delay * 2);
    setTimeout(() => {
      if (!stopping && slot.child === null) spawnWorker(slot);
    }, delay);
  };

  const onListening = () => {
    if (started || slots.some((s) => s.handoffPort === 0)) return;
    started = true;
    log.info(
      { address: o.listen.address, port, workers: o.workers, allocator: currentAllocator() },
      'workers listening',
    );
  };

  /** A worker that exits before every worker listened (bad certificate, port taken): stop all. */
  const failStart = (slot: Slot) => {
    stopping = true;
    failed = true;
    log.error({ worker: slot.index, ...slot.lastExit }, 'a worker exited while starting; stopping the others');
    for (const s of slots) s.child?.kill('SIGKILL');
    onStopped();
  };

  const onStopped = () => {
    if (slots.some((s) => s.child !== null)) return;
    reserved?.release();
    const clean = slots.every((s) => s.lastExit?.code === 0);
    if (started) log.info({ workers: o.workers, clean }, 'all workers stopped');
    process.exit(clean && !failed ? 0 : 1);
  };

  const ticketTimer = setInterval(() => {
    const key = ticketKeys.rotateIfDue(performance.now());
    if (!key) return;
    const ticketKey = Buffer.from(key).toString('base64');
    for (const s of slots) send(s, { type: 'ticket-key', ticketKey });
  }, TICKET_KEY_CHECK_MS);
  ticketTimer.unref();

  let signals = 0;
  const shutdown = (signal: string) => {
    // A second signal skips the drain.
    if (++signals > 1) {
      for (const s of slots) s.child?.kill('SIGKILL');
      process.exit(1);
    }
    log.info({ signal, workers: o.workers }, 'draining every worker');
    stopping = true;
    // A worker waiting to be restarted is not restarted; its earlier crash does not make this stop unclean.
    for (const s of slots) if (s.child === null) s.lastExit = { code: 0, signal: null };
    clearInterval(ticketTimer);
    // A message, not a signal: a worker that also got the signal itself (systemd's
    // KillMode=control-group, Ctrl-C on the process group) must not take it as the second one.
    for (const s of slots) send(s, { type: 'drain' });
    stoppedAt = performance.now();
    armKill();
    onStopped();
  };

  // Never wait for ever: a worker that has not exited by the longest drain timeout a worker
  // reported (and a grace) after the stop began is killed.
  let drainTimeoutMs = o.drainTimeoutMs;
  let stoppedAt = 0;
  let killTimer: NodeJS.Timeout | null = null;
  const armKill = () => {
    if (killTimer) clearTimeout(killTimer);
    const due = Math.max(0, stoppedAt + drainTimeoutMs + DRAIN_GRACE_MS - performance.now());
    killTimer = setTimeout(() => {
      const left = slots.filter((s) => s.child !== null);
      if (left.length === 0) return;
      log.error({ workers: left.map((s) => s.index) }, 'workers still running after the drain timeout; killing them');
      for (const s of left) s.child?.kill('SIGKILL');
    }, due);
    killTimer.unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  log.info({ workers: o.workers, port }, 'starting workers');
  for (const slot of slots) spawnWorker(slot);
}
