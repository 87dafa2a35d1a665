/**
 * spooky-control's state machine: the applied config and its version, applying a new one
 * (validate → build snapshot → push → every data plane ACKs, or nothing changes anywhere),
 * rollback, operator drains, and the views the control API serves.
 */
import { randomBytes } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { loadConfigText } from '../model/config/load.js';
import { buildRuntimeConfig, type RuntimeConfig } from '../model/config/runtime.js';
import type { Config } from '../model/config/schema.js';
import { encodeSnapshot } from '../model/snapshot/codec.js';
import { type BackendStates, type OverloadState, Snapshot, type Stats } from '../proto/gen/spooky/v1/control.js';
import type { ApplyResult, ControlApiHandlers } from './api/server.js';
import type {
  AppliedConfigBody,
  BackendInfo,
  DataPlaneOutcome,
  DataPlanesBody,
  OverloadInfo,
  ReadyBody,
  ValidateBody,
} from './api/types.js';
import { HealthChecker, type HealthTarget } from './health/checker.js';
import { ControlPlaneMetrics } from './metrics.js';
import { type AppliedRecord, type AppliedStore, sha256 } from './store/applied-store.js';
import type { SnapshotServer } from './xds/server.js';

export interface ControlPlaneOptions {
  store: AppliedStore;
  /** Where health-check metrics are registered (the control plane's metrics endpoint). */
  registry?: Registry;
  server: SnapshotServer;
  log: Logger;
  /** How long an apply waits for each data plane's ACK or NACK. */
  ackTimeoutMs?: number;
  /** How long `backends` waits for the data planes' fresh in-flight counts. */
  statsTimeoutMs?: number;
}

/** How long a scrape or `spooky backends` waits for a data plane's fresh stats (docs/operations.md). */
export const STATS_REPLY_TIMEOUT_MS = 1000;

/** Requests in flight to each backend, summed over the data planes' last stats. */
export function inFlightByBackend(dataplanes: ReadonlyArray<{ stats: Stats | null }>): Map<string, number> {
  const sums = new Map<string, number>();
  for (const d of dataplanes) {
    for (const b of d.stats?.backendInFlight ?? []) sums.set(b.backendId, (sums.get(b.backendId) ?? 0) + b.inFlight);
  }
  return sums;
}

interface Active {
  record: AppliedRecord;
  config: Config;
  runtime: RuntimeConfig;
  snapshot: Snapshot;
}

type Prepared = { ok: true; config: Config; runtime: RuntimeConfig } | { ok: false; result: ApplyResult };

/** What the health checker probes, from the validated config (health_check is control-plane only). */
function healthTargets(config: Config, runtime: RuntimeConfig): HealthTarget[] {
  const targets: HealthTarget[] = [];
  for (const pool of runtime.pools.values()) {
    const backends = config.upstream[pool.name]?.backends ?? [];
    for (const backend of pool.backends) {
      const hc = backends.find((b) => b.id === backend.id)?.health_check;
      targets.push({
        backend,
        check: hc
          ? {
              method: hc.method,
              path: hc.path,
              timeoutMs: hc.timeout_ms,
              expectedStatus: hc.expected_status,
              intervalMs: hc.interval,
              failureThreshold: hc.failure_threshold,
              successThreshold: hc.success_threshold,
              cooldownMs: hc.cooldown_ms,
            }
          : null,
      });
    }
  }
  return targets;
}

const REDACT_TOKEN = /^(\s*auth_token\s*:\s*).+$/gm;

function summaryOf(rt: RuntimeConfig): string {
  let backends = 0;
  for (const p of rt.pools.values()) backends += p.backends.length;
  return `${rt.pools.size} pools, ${backends} backends`;
}

/** What a snapshot serves, without its version and nonce (the files its config names included). */
function contentOf(snapshot: Snapshot): string {
  return sha256(Buffer.from(Snapshot.encode({ ...snapshot, version: 0, nonce: '' }).finish()).toString('base64'));
}

/** contentOf the snapshot a runtime config would make. */
function contentOfRuntime(runtime: RuntimeConfig): string {
  return contentOf(encodeSnapshot(runtime, 0, ''));
}

/** The highest version a hello may make this control plane adopt (see adoptServedVersion). */
const MAX_ADOPTED_VERSION = 2 ** 52;

export class ControlPlane implements ControlApiHandlers {
  private active: Active | null = null;
  /** The highest version ever offered; versions are never reused, even refused ones. */
  private lastVersion = 0;
  private applying = false;
  private readonly drained = new Set<string>();
  private statesEpoch = 0;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: ControlPlaneOptions) {
    // Versions only grow: even one offered just before a crash (reserved on disk) is never reused.
    this.lastVersion = opts.store.highestVersion();
    opts.server.onHello((servedVersion) => this.adoptServedVersion(servedVersion));
    opts.server.admitWith((hello) => this.belongs(hello));
  }

  /**
   * Who belongs: a data plane serving another listener than the config's (address or port) is
   * another deployment's, or runs another config; joining would make it NACK every push and
   * every apply fail. It is refused at hello with the reason (both sides log it). Before any
   * config is active every data plane is admitted.
   */
  private belongs(hello: { nodeId: string; listenAddress: string; listenPort: number }): string | null {
    const listen = this.active?.runtime.listen;
    if (!listen) return null;
    // A data plane built before the check says no listener (proto3 defaults): admitted, so that
    // upgrading spooky-control first does not cut off the fleet.
    if (hello.listenAddress === '') return null;
    if (hello.listenAddress === listen.address && hello.listenPort === listen.port) return null;
    const theirs = `${hello.listenAddress || '?'} port ${hello.listenPort}`;
    return `data plane ${hello.nodeId} serves ${theirs}, this control plane's config listens on ${listen.address} port ${listen.port}: it belongs to another deployment (give each its own control.socket) or runs another config`;
  }

  get version(): number {
    return this.active?.record.version ?? 0;
  }

  /** At start: the persisted applied config, if any (it wins over the file). */
  restore(): AppliedRecord | null {
    const record = this.opts.store.current();
    if (!record) return null;
    const loaded = loadConfigText(record.yaml, 'applied config', { baseDir: record.baseDir, controlSides: [] });
    if (!loaded.ok) {
      this.opts.log.error({ errors: loaded.errors }, 'the persisted applied config no longer validates; ignoring it');
      return null;
    }
    let runtime: RuntimeConfig;
    try {
      runtime = buildRuntimeConfig(loaded.config, { baseDir: record.baseDir });
    } catch (e) {
      // A file it names changed into something unreadable since it validated.
      this.opts.log.error({ err: (e as Error).message }, 'the persisted applied config cannot be loaded; ignoring it');
      return null;
    }
    this.lastVersion = Math.max(this.lastVersion, record.version);
    this.activate(record, loaded.config, runtime);
    const cur = this.active;
    const content = cur ? contentOf(cur.snapshot) : '';
    if (cur && record.contentSha256 !== content) {
      // The files it names changed while spooky-control was down (a certificate renewed in
      // place): data planes serving version N from their cache must be offered the new content,
      // so it gets a new number. (A record from before the content hash counts as changed.)
      const snapshot = this.reissue(cur);
      this.opts.log.info(
        { version: snapshot.version, applied_version: record.version },
        'the files the applied config names changed since it was applied; serving them as a new version',
      );
      // Recorded as applied (the same text keeps `previous`), so the next start does not do it again.
      const renewed: AppliedRecord = {
        ...record,
        version: snapshot.version,
        appliedAt: new Date().toISOString(),
        appliedBy: 'spooky-control start (files re-read)',
        // A re-issued snapshot keeps its content.
        contentSha256: content,
      };
      try {
        this.opts.store.commit(renewed);
        this.active = { ...cur, snapshot, record: renewed };
        return renewed;
      } catch (e) {
        this.opts.log.warn({ err: (e as Error).message }, 'cannot record the re-read config under control.state_dir');
      }
    }
    return record;
  }

  /** Validates, pushes and commits `yaml`; relative paths in it resolve against `baseDir`. */
  async applyYaml(yaml: string, by: string, baseDir: string): Promise<ApplyResult> {
    if (this.applying) return { kind: 'busy' };
    this.applying = true;
    try {
      return await this.doApply(yaml, by, baseDir);
    } finally {
      this.applying = false;
    }
  }

  private prepare(yaml: string, baseDir: string): Prepared {
    const loaded = loadConfigText(yaml, 'config', { baseDir, controlSides: [] });
    if (!loaded.ok) return { ok: false, result: { kind: 'invalid', errors: loaded.errors } };
    try {
      return { ok: true, config: loaded.config, runtime: buildRuntimeConfig(loaded.config, { baseDir }) };
    } catch (e) {
      return { ok: false, result: { kind: 'invalid', errors: [{ path: '', message: (e as Error).message }] } };
    }
  }

  private async doApply(yaml: string, by: string, baseDir: string): Promise<ApplyResult> {
    const prepared = this.prepare(yaml, baseDir);
    if (!prepared.ok) return prepared.result;
    const hash = sha256(yaml);
    const cur = this.active;
    const content = contentOfRuntime(prepared.runtime);
    // The same text can mean new content: a certificate renewed in place (certbot rewrites the
    // files its paths name) must reach the data planes on the next apply, reload or SIGHUP.
    if (cur && cur.record.sha256 === hash && cur.record.baseDir === baseDir && content === contentOf(cur.snapshot)) {
      return { kind: 'applied', body: { version: cur.record.version, unchanged: true, dataplanes: [] } };
    }
    const version = ++this.lastVersion;
    const record: AppliedRecord = {
      version,
      sha256: hash,
      appliedAt: new Date().toISOString(),
      appliedBy: by,
      baseDir,
      contentSha256: content,
      yaml,
    };
    // Written (not yet current) before any data plane sees it: a full or read-only state_dir
    // refuses the apply while nothing has changed anywhere.
    let staged: { commit(): void; abort(): void };
    try {
      staged = this.opts.store.stage(record);
    } catch (e) {
      const message = `cannot save the applied config under control.state_dir: ${(e as Error).message}; nothing changed`;
      this.opts.log.error({ version, by }, message);
      return { kind: 'failed', message };
    }
    try {
      // Persisted before any data plane can serve it: a crash during the push cannot reuse it.
      this.opts.store.reserveVersion(version);
    } catch (e) {
      staged.abort();
      const message = `cannot save the applied config under control.state_dir: ${(e as Error).message}; nothing changed`;
      this.opts.log.error({ version, by }, message);
      return { kind: 'failed', message };
    }
    const snapshot = encodeSnapshot(prepared.runtime, version, randomBytes(8).toString('hex'));
    const outcomes = await this.opts.server.push(snapshot, this.opts.ackTimeoutMs ?? 10_000);
    if (this.opts.registry) ControlPlaneMetrics.for(this.opts.registry).recordApply(outcomes);
    if (outcomes.some((o) => o.result === 'nack')) {
      staged.abort();
      await this.revert(outcomes);
      this.opts.log.warn({ version, by, outcomes }, 'apply refused by a data plane; the previous config stays active');
      return { kind: 'rejected', version, dataplanes: outcomes };
    }
    try {
      staged.commit();
    } catch (e) {
      // The rename failed after a successful write (rare): not durable, so not applied.
      staged.abort();
      await this.revert(outcomes);
      const message = `cannot save the applied config under control.state_dir: ${(e as Error).message}; nothing changed`;
      this.opts.log.error({ version, by }, message);
      return { kind: 'failed', message };
    }
    this.activate(record, prepared.config, prepared.runtime, snapshot);
    // A data plane that connected during the push was caught up to the version before.
    this.opts.server.offerCurrentToStragglers();
    this.opts.log.info({ version, by, summary: summaryOf(prepared.runtime), outcomes }, 'config applied');
    return { kind: 'applied', body: { version, unchanged: false, dataplanes: outcomes } };
  }

  /** Data planes that took a refused version go back to the active config (a new version). */
  private async revert(outcomes: DataPlaneOutcome[]): Promise<void> {
    const cur = this.active;
    if (!cur || !outcomes.some((o) => o.result === 'ack')) return;
    const snapshot = this.reissue(cur);
    await this.opts.server.push(snapshot, this.opts.ackTimeoutMs ?? 10_000);
  }

  /** The active config under a new version (persisted first), made current. */
  private reissue(cur: Active): Snapshot {
    const version = ++this.lastVersion;
    try {
      this.opts.store.reserveVersion(version);
    } catch (e) {
      // The adoption on reconnect still keeps versions growing should this be lost.
      this.opts.log.warn({ version, err: (e as Error).message }, 'cannot record the version under control.state_dir');
    }
    const snapshot = { ...cur.snapshot, version, nonce: randomBytes(8).toString('hex') };
    this.active = { ...cur, snapshot };
    this.opts.server.setCurrent(snapshot);
    return snapshot;
  }

  /**
   * A data plane said hello serving `servedVersion`. One ahead of us serves a version this control
   * plane never committed (it was killed during an apply, or its state_dir was restored): adopt the
   * number, so it is never reused, and move that data plane back to the active config under a
   * newer version rather than an older one.
   */
  private adoptServedVersion(servedVersion: number): void {
    // Versions are counted in doubles: past 2^52 they could repeat. No real history gets there;
    // a hello that says so is broken or hostile and must not poison state_dir for good.
    if (servedVersion > MAX_ADOPTED_VERSION) {
      this.opts.log.warn({ served_version: servedVersion }, 'ignoring an implausible version from a data plane');
      return;
    }
    if (servedVersion > this.lastVersion) {
      this.lastVersion = servedVersion;
      try {
        this.opts.store.reserveVersion(servedVersion);
      } catch (e) {
        this.opts.log.warn({ err: (e as Error).message }, 'cannot record the version under control.state_dir');
      }
    }
    const cur = this.active;
    if (!cur || this.applying || servedVersion <= cur.snapshot.version) return;
    const snapshot = this.reissue(cur);
    this.opts.log.warn(
      { served_version: servedVersion, version: snapshot.version, applied_version: cur.record.version },
      'a data plane serves a version this control plane never committed; re-sending the applied config as a newer version',
    );
  }

  private activate(record: AppliedRecord, config: Config, runtime: RuntimeConfig, snapshot?: Snapshot): void {
    const snap = snapshot ?? encodeSnapshot(runtime, record.version, randomBytes(8).toString('hex'));
    const tlsChanged = JSON.stringify(this.active?.runtime.upstreamTls) !== JSON.stringify(runtime.upstreamTls);
    this.active = { record, config, runtime, snapshot: snap };
    this.opts.server.setCurrent(snap);
    if (tlsChanged || !this.checker) {
      // The prober's TLS settings are fixed at construction: a new upstream_tls needs a new checker.
      this.checker?.stop();
      this.checker = new HealthChecker({
        tls: runtime.upstreamTls,
        log: this.opts.log,
        registry: this.opts.registry,
        onTransition: () => this.opts.server.setBackendStates(this.backendStates(), true),
      });
    }
    this.checker.update(healthTargets(config, runtime));
    // The whole table, every time: a backend's state may have changed with the config (a new
    // server behind an id starts healthy) and data planes must hold what we hold.
    this.opts.server.setBackendStates(this.backendStates(), true);
  }

  private checker: HealthChecker | null = null;

  /** Stops health checking (process shutdown). */
  stop(): void {
    this.checker?.stop();
  }

  private backendStates(): BackendStates {
    const states = [];
    for (const pool of this.active?.runtime.pools.values() ?? []) {
      for (const b of pool.backends) {
        states.push({
          backendId: b.id,
          healthy: this.checker?.isHealthy(b.id) ?? true,
          drained: this.drained.has(b.id),
        });
      }
    }
    return { epoch: ++this.statesEpoch, states, full: true };
  }

  // ---------------------------------------------------------------- control API handlers

  appliedConfig(): AppliedConfigBody | null {
    const r = this.active?.record;
    if (!r) return null;
    return {
      version: r.version,
      sha256: r.sha256,
      applied_at: r.appliedAt,
      applied_by: r.appliedBy,
      yaml: r.yaml.replace(REDACT_TOKEN, '$1"<redacted>"'),
    };
  }

  /** The directory relative paths of API-submitted YAML resolve against: the active config's. */
  private get baseDir(): string {
    return this.active?.record.baseDir ?? process.cwd();
  }

  validate(yaml: string): ValidateBody {
    const loaded = loadConfigText(yaml, 'config', { baseDir: this.baseDir, controlSides: [] });
    const old = this.active?.record.yaml;
    const diff =
      old === undefined || old === yaml ? '' : createTwoFilesPatch('applied', 'new', old, yaml, '', '', { context: 3 });
    if (!loaded.ok) return { ok: false, errors: loaded.errors, warnings: loaded.warnings, diff };
    const body: ValidateBody = { ok: true, errors: [], warnings: loaded.warnings, diff };
    const cur = this.active;
    if (cur && old === yaml) {
      try {
        const runtime = buildRuntimeConfig(loaded.config, { baseDir: this.baseDir });
        if (contentOfRuntime(runtime) !== contentOf(cur.snapshot)) body.files_changed = true;
      } catch {
        // A file that cannot be read now: apply will say so.
      }
    }
    return body;
  }

  apply(yaml: string, by: string): Promise<ApplyResult> {
    return this.applyYaml(yaml, by, this.baseDir);
  }

  /**
   * Applies the applied config again with its files re-read: a certificate renewed in place goes
   * out as a new version, nothing else changes (unchanged when the files did not). Unlike SIGHUP
   * it never brings back spooky-control's own file over a config applied through the API.
   */
  async reload(by: string): Promise<ApplyResult> {
    const cur = this.active;
    if (!cur) return { kind: 'nothing_applied' };
    return this.applyYaml(cur.record.yaml, `${by} (reload)`, cur.record.baseDir);
  }

  async rollback(by: string): Promise<ApplyResult> {
    const prev = this.opts.store.previous();
    if (!prev) return { kind: 'no_previous' };
    return this.applyYaml(prev.yaml, `${by} (rollback to version ${prev.version})`, prev.baseDir);
  }

  async backends(): Promise<BackendInfo[]> {
    await this.opts.server.refreshStats(this.opts.statsTimeoutMs ?? STATS_REPLY_TIMEOUT_MS);
    return this.backendList(inFlightByBackend(this.opts.server.dataplanes()));
  }

  private backendList(inFlight = new Map<string, number>()): BackendInfo[] {
    const out: BackendInfo[] = [];
    const health = new Map((this.checker?.health() ?? []).map((h) => [h.id, h]));
    const fallbackSince = this.active?.record.appliedAt ?? new Date(this.startedAt).toISOString();
    for (const pool of this.active?.runtime.pools.values() ?? []) {
      for (const b of pool.backends) {
        const h = health.get(b.id);
        const probe = h?.lastProbe;
        out.push({
          id: b.id,
          pool: pool.name,
          origin: b.origin,
          state: h?.state ?? 'unknown',
          since: h ? h.since.toISOString() : fallbackSince,
          last_probe: probe
            ? {
                ok: probe.ok,
                ...(probe.status !== undefined ? { status: probe.status } : {}),
                ...(probe.error !== undefined ? { error: probe.error } : {}),
                latency_ms: Math.round(probe.latencyMs * 10) / 10,
                at: probe.at.toISOString(),
              }
            : null,
          in_flight: inFlight.get(b.id) ?? 0,
          drained: this.drained.has(b.id),
        });
      }
    }
    return out;
  }

  setDrained(id: string, drained: boolean, by: string): boolean {
    if (!this.backendList().some((b) => b.id === id)) return false;
    if (drained) this.drained.add(id);
    else this.drained.delete(id);
    this.opts.server.setBackendStates(this.backendStates(), true);
    this.opts.log.info({ backend: id, drained, by }, drained ? 'backend drained' : 'backend undrained');
    return true;
  }

  dataplanes(): DataPlanesBody {
    return {
      // What data planes should serve: the snapshot version (a revert after a refusal re-sends
      // the active config under a new version).
      current_version: this.active?.snapshot.version ?? 0,
      dataplanes: [
        ...this.opts.server.dataplanes().map((d) => ({ d, disconnectedAt: null })),
        ...this.opts.server.departedDataplanes().map(({ info, disconnectedAt }) => ({ d: info, disconnectedAt })),
      ].map(({ d, disconnectedAt }) => ({
        node_id: d.nodeId,
        connected: disconnectedAt === null,
        peer: d.peer,
        pid: d.pid,
        build: d.build,
        connected_at: d.connectedAt.toISOString(),
        disconnected_at: disconnectedAt?.toISOString() ?? null,
        served_version: d.servedVersion,
        last_ack: d.lastAck ? { version: d.lastAck.version, at: d.lastAck.at.toISOString() } : null,
        last_nack: d.lastNack
          ? { version: d.lastNack.version, at: d.lastNack.at.toISOString(), error: d.lastNack.error }
          : null,
        // A node that went away keeps no stats (SnapshotServer drops them): zeros, no overload.
        active_connections: d.stats?.activeConnections ?? 0,
        requests_per_second: d.stats?.requestsPerSecond ?? 0,
        overload: overloadInfo(d.stats?.overload),
      })),
    };
  }

  ready(): ReadyBody {
    const reasons: string[] = [];
    const cur = this.active;
    if (!cur) reasons.push('no config applied');
    else {
      const served = this.opts.server.dataplanes().filter((d) => d.servedVersion === cur.snapshot.version);
      if (served.length === 0) reasons.push(`no data plane serves the current version ${cur.snapshot.version}`);
      // operations.md: every pool needs a backend that is healthy and not drained. (The original
      // asked for one healthy backend overall; with one pool the two rules agree.)
      for (const pool of cur.runtime.pools.values()) {
        if (pool.backends.some((b) => !this.drained.has(b.id) && (this.checker?.isHealthy(b.id) ?? true))) continue;
        const why = pool.backends.map((b) => `${b.id} ${this.drained.has(b.id) ? 'drained' : 'unhealthy'}`);
        reasons.push(`pool ${pool.name} has no healthy backend in service (${why.join(', ')})`);
      }
    }
    return { ready: reasons.length === 0, reasons };
  }
}

/** The data plane's overload figures in the API's shape. */
function overloadInfo(o: OverloadState | undefined): OverloadInfo | null {
  if (!o) return null;
  return {
    adaptive_admission: {
      enabled: o.adaptiveEnabled,
      limit: o.adaptiveLimit,
      in_flight: o.inFlight,
      shed_total: o.adaptiveShed,
    },
    brownout: { enabled: o.brownoutEnabled, active: o.brownoutActive, shed_total: o.brownoutShed },
  };
}
