/**
 * The checks behind `spooky doctor`: the seed page's production checklist and system requirements,
 * each a function over an injectable environment (procfs and /etc roots, clock, timeouts) so that
 * tests need neither root nor this machine's settings. Every check returns pass/warn/fail, what it
 * found and the command or edit that fixes it; none throws.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { machine } from 'node:os';
import { join, resolve } from 'node:path';
import { getCACertificates } from 'node:tls';
import { probeBackend } from '../controlplane/health/prober.js';
import { type QuicStack, quicStack } from '../dataplane/quic/stack.js';
import { findJemalloc } from '../lib/allocator.js';
import { NODE_FLOOR_MAJOR, NODE_UPGRADE_FIX, nodeMajor } from '../lib/node-runtime.js';
import { FileRefusedError, PEM_MAX_BYTES, readRegularTextFile } from '../lib/regular-file.js';
import { parseAccountFile } from '../lib/system-accounts.js';
import { analyseBackendAddress } from '../model/config/address.js';
import { formatIssues, type LoadResult } from '../model/config/load.js';
import type { RuntimeBackend, RuntimeConfig } from '../model/config/runtime.js';
import { controlUrlFor } from './control-client.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** The command or edit that fixes a warn or fail; '' on pass. */
  fix: string;
}

export interface DoctorEnv {
  /** procfs: sys/net/core/rmem_*, sys/kernel/{osrelease,ostype,arch}, self/limits. */
  procRoot: string;
  /** passwd and group, for the key file's owner; spooky/config.yaml.backup. */
  etcRoot: string;
  now: Date;
  /** Health and metrics requests. */
  fetchTimeoutMs: number;
  /** The previous binary kept for rollback. */
  prevBinary: string;
  /** The Node.js this runs on (process.versions.node) and where it is. */
  nodeVersion: string;
  nodePath: string;
  /** The QUIC engine and the advisories that apply to it. */
  quicStack: QuicStack;
  /**
   * The CA certificates (PEM) clients trust: Node's bundled Mozilla store, NODE_EXTRA_CA_CERTS and
   * the system store, as a browser on this host would; `spooky doctor --ca-file` adds a private CA.
   */
  trustedCas: () => readonly string[];
  /** Whether a file exists (the jemalloc library). */
  fileExists: (path: string) => boolean;
}

export const RMEM_MAX = 67_108_864;
export const RMEM_DEFAULT = 16_777_216;
export const NOFILE_MIN = 65_536;
export const NOFILE_RECOMMENDED = 1_048_576;
const DAY_MS = 86_400_000;
const EXPIRY_WARNING_DAYS = 14;

export function doctorEnv(overrides: Partial<DoctorEnv> = {}): DoctorEnv {
  return {
    procRoot: '/proc',
    etcRoot: '/etc',
    now: new Date(),
    fetchTimeoutMs: 2000,
    prevBinary: '/usr/local/bin/spooky.prev',
    nodeVersion: process.versions.node,
    nodePath: process.execPath,
    quicStack: quicStack(),
    trustedCas: systemTrustStore,
    fileExists: existsSync,
    ...overrides,
  };
}

let trustStore: readonly string[] | null = null;
/** Node's default CAs (bundled + NODE_EXTRA_CA_CERTS) and the operating system's store. */
export function systemTrustStore(): readonly string[] {
  if (trustStore === null) {
    let system: string[] = [];
    try {
      system = getCACertificates('system');
    } catch {
      // no readable system store: the bundled one still decides
    }
    trustStore = [...new Set([...getCACertificates('default'), ...system])];
  }
  return trustStore;
}

/** How a certificate chain ends: at a trusted CA, or where it stops and why. */
export type ChainVerdict =
  | { trusted: true; root: X509Certificate }
  | { trusted: false; selfSigned: boolean; stopsAt: X509Certificate };

/**
 * Follows `chain` (leaf first, as served) from the leaf to a CA in `trusted`, as a client does:
 * at each step a trusted CA that issued and signed the current certificate ends it; otherwise a
 * served intermediate that did so is the next step. Signatures are checked, names alone are not
 * enough.
 */
export function verifyChain(chain: readonly X509Certificate[], trusted: readonly X509Certificate[]): ChainVerdict {
  const signedBy = (cert: X509Certificate, by: X509Certificate) => cert.checkIssued(by) && cert.verify(by.publicKey);
  let cur = chain[0];
  const seen = new Set<X509Certificate>([cur]);
  for (let depth = 0; depth < 10; depth++) {
    const root = trusted.find((ca) => signedBy(cur, ca));
    if (root) return { trusted: true, root };
    const next = chain.find((c) => !seen.has(c) && signedBy(cur, c));
    if (!next) break;
    seen.add(next);
    cur = next;
  }
  return { trusted: false, selfSigned: signedBy(cur, cur), stopsAt: cur };
}

type Make = (detail: string, fix?: string) => CheckResult;
/** pass/warn/fail results of one check; a pass has no fix. */
function check(id: string, title: string): Record<CheckStatus, Make> {
  const make =
    (status: CheckStatus): Make =>
    (detail, fix = '') => ({ id, title, status, detail, fix: status === 'pass' ? '' : fix });
  return { pass: make('pass'), warn: make('warn'), fail: make('fail') };
}
const reason = (err: unknown) => {
  if (err instanceof FileRefusedError) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(err));
};

export interface DoctorBackend {
  id: string;
  address: string;
  protocol: 'h2' | 'http1';
  /** undefined: the backend has no health_check. */
  healthPath?: string;
}

/** What the checks need from the config, read leniently so that an invalid file is still checked. */
export interface DoctorConfig {
  file: string;
  load: LoadResult;
  cert?: string;
  key?: string;
  keyGroup: string;
  backends: DoctorBackend[];
  upstreamTls: RuntimeConfig['upstreamTls'];
  controlApi: { enabled: boolean; address: string; port: number; hasToken: boolean };
  metrics: { enabled: boolean; address: string; port: number; path: string };
  stateDir: string;
}

/** The certificates in listen.tls.cert, leaf first, or a failed result saying why there are none. */
function certificates(cfg: DoctorConfig, c: Record<CheckStatus, Make>): X509Certificate[] | CheckResult {
  const fix = `set listen.tls.cert in ${cfg.file} to the full chain PEM file (spooky validate ${cfg.file})`;
  if (cfg.cert === undefined) return c.fail(`no listen.tls.cert in ${cfg.file}`, fix);
  try {
    const text = readRegularTextFile(cfg.cert, PEM_MAX_BYTES);
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) return c.fail(`${cfg.cert}: no PEM certificate`, fix);
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    return c.fail(`cannot read ${cfg.cert} (${reason(err)})`, fix);
  }
}

const cn = (name: string) => /^CN=(.*)$/m.exec(name)?.[1] ?? name.replace(/\n/g, ', ');

export function checkTlsTrusted(cfg: DoctorConfig, env: DoctorEnv): CheckResult {
  const c = check('tls-trusted', 'TLS certificate from a trusted CA');
  const certs = certificates(cfg, c);
  if (!Array.isArray(certs)) return certs;
  const leaf = certs[0];
  const fromCa = `use a certificate from a CA (e.g. certbot certonly --standalone -d HOST) and point listen.tls.cert at its fullchain.pem`;
  const trusted: X509Certificate[] = [];
  for (const pem of env.trustedCas()) {
    try {
      trusted.push(new X509Certificate(pem));
    } catch {
      // one unparsable store entry does not make the others useless
    }
  }
  const verdict = verifyChain(certs, trusted);
  if (verdict.trusted)
    return c.pass(`${cn(leaf.subject)} issued by ${cn(leaf.issuer)}, trusted via ${cn(verdict.root.subject)}`);
  if (verdict.stopsAt === leaf && verdict.selfSigned)
    return c.fail(`${cfg.cert}: ${cn(leaf.subject)} is self-signed; HTTP/3 clients reject it`, fromCa);
  const end = verdict.stopsAt;
  if (verdict.selfSigned)
    return c.fail(
      `${cfg.cert}: the chain ends at ${cn(end.subject)}, a CA this host's trust store does not have; browsers reject it`,
      `${fromCa}; for a private CA that every client trusts, run spooky doctor --ca-file CA.pem`,
    );
  return c.fail(
    `${cfg.cert}: ${cn(end.subject)} is issued by ${cn(end.issuer)}, which is neither in the file nor a trusted CA (a missing intermediate, or a private CA)`,
    `point listen.tls.cert at the full chain (fullchain.pem: leaf, then intermediates); ${fromCa}`,
  );
}

export function checkTlsExpiry(cfg: DoctorConfig, env: DoctorEnv): CheckResult {
  const c = check('tls-expiry', 'TLS certificate not expiring');
  const certs = certificates(cfg, c);
  if (!Array.isArray(certs)) return certs;
  const fix = `renew the certificate (e.g. certbot renew), then load it with spooky apply ${cfg.file}`;
  const first = certs.reduce((a, b) => (Date.parse(b.validTo) < Date.parse(a.validTo) ? b : a));
  const to = Date.parse(first.validTo);
  const left = to - env.now.getTime();
  const when = new Date(to).toISOString();
  const notYet = certs.find((x) => Date.parse(x.validFrom) > env.now.getTime());
  if (notYet) return c.fail(`${cn(notYet.subject)} is not valid until ${notYet.validFrom}`, fix);
  if (left < 0) return c.fail(`${cn(first.subject)} expired on ${when}`, fix);
  const days = Math.floor(left / DAY_MS);
  const detail = `${cn(first.subject)} expires on ${when} (in ${days} day${days === 1 ? '' : 's'})`;
  if (left <= EXPIRY_WARNING_DAYS * DAY_MS) return c.warn(detail, fix);
  return c.pass(detail);
}

/** name → id from an /etc/passwd or /etc/group file; a missing file resolves no names. */
function ids(file: string): Map<string, number> {
  try {
    return parseAccountFile(readFileSync(file, 'utf8'));
  } catch {
    return new Map();
  }
}

const nameOf = (map: Map<string, number>, id: number) => [...map].find(([, v]) => v === id)?.[0] ?? String(id);

export function checkKeyPermissions(cfg: DoctorConfig, env: DoctorEnv): CheckResult {
  const c = check('key-permissions', 'private key mode 0640, owner root:spooky');
  const key = cfg.key;
  if (key === undefined) return c.fail(`no listen.tls.key in ${cfg.file}`, `set listen.tls.key in ${cfg.file}`);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(key);
  } catch (err) {
    return c.fail(`cannot stat ${key} (${reason(err)})`, `fix listen.tls.key in ${cfg.file}`);
  }
  const mode = st.mode & 0o777;
  const users = ids(join(env.etcRoot, 'passwd'));
  const groups = ids(join(env.etcRoot, 'group'));
  const owner = `${nameOf(users, st.uid)}:${nameOf(groups, st.gid)}`;
  let detail = `${key}: mode 0${mode.toString(8)}, owner ${owner}`;
  let status: CheckStatus = 'pass';
  const fixes: string[] = [];
  if (mode & 0o027) {
    status = 'fail';
    detail += mode & 0o007 ? ' (readable or writable by every user)' : ' (group-writable)';
    fixes.push(`chmod 640 ${key}`);
  } else if (mode !== 0o640) {
    status = 'warn';
    fixes.push(`chmod 640 ${key}`);
  }
  const rootUid = users.get('root') ?? 0;
  const gid = groups.get(cfg.keyGroup);
  if (st.uid !== rootUid || st.gid !== gid) {
    if (status === 'pass') status = 'warn';
    if (gid === undefined) {
      detail += `; no group ${cfg.keyGroup} in ${join(env.etcRoot, 'group')}`;
      fixes.push(`groupadd --system ${cfg.keyGroup}`);
    }
    fixes.push(`chown root:${cfg.keyGroup} ${key}`);
  }
  return c[status](detail, fixes.join(' && '));
}

export function checkConfigValid(cfg: DoctorConfig): CheckResult {
  const c = check('config-valid', 'config validates');
  const fix = `spooky validate ${cfg.file}`;
  const { load } = cfg;
  if (!load.ok) {
    const more = load.errors.length > 3 ? ` (and ${load.errors.length - 3} more)` : '';
    return c.fail(formatIssues(cfg.file, load.errors.slice(0, 3)).replace(/\n/g, '; ') + more, fix);
  }
  if (load.warnings.length > 0) {
    return c.warn(formatIssues(cfg.file, load.warnings.slice(0, 1), 'warning'), fix);
  }
  return c.pass(`${cfg.file} is valid`);
}

export async function checkHealthEndpoints(cfg: DoctorConfig, env: DoctorEnv): Promise<CheckResult> {
  const c = check('health-endpoints', 'backend health endpoints answer 2xx');
  if (cfg.backends.length === 0) return c.fail(`no backends in ${cfg.file}`, `add backends under upstream`);
  const outcomes = await Promise.all(
    cfg.backends.map(async (b): Promise<{ status: CheckStatus; text: string; fix?: string }> => {
      if (b.healthPath === undefined) {
        const fix = `add a health_check (path: /health) to backend ${b.id} in ${cfg.file}`;
        return { status: 'warn', text: `${b.id}: no health check`, fix };
      }
      const addr = analyseBackendAddress(b.address);
      if (typeof addr === 'string') {
        return { status: 'fail', text: `${b.id}: ${addr}`, fix: `fix the address of ${b.id} in ${cfg.file}` };
      }
      const url = `${addr.origin}${b.healthPath}`;
      const backend: RuntimeBackend = { ...addr, id: b.id, pool: '', protocol: b.protocol, weight: 1 };
      const spec = { method: 'GET', path: b.healthPath, timeoutMs: env.fetchTimeoutMs, expectedStatus: '2xx' };
      const probe = await probeBackend(backend, spec, cfg.upstreamTls);
      if (probe.ok) return { status: 'pass', text: `${b.id} ${url} ${probe.status}` };
      const why = probe.status !== undefined ? `answered ${probe.status}` : (probe.error ?? 'failed');
      const fix = `curl -sv ${url}, then fix backend ${b.id} or its health_check.path in ${cfg.file}`;
      return { status: 'fail', text: `${b.id} ${url} ${why}`, fix };
    }),
  );
  const status = (['fail', 'warn'] as const).find((s) => outcomes.some((o) => o.status === s)) ?? 'pass';
  const fixes = outcomes.flatMap((o) => (o.fix === undefined ? [] : [o.fix]));
  return c[status](outcomes.map((o) => o.text).join('; '), fixes.join('; '));
}

const isLoopback = (a: string) => a === '::1' || a === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(a);

export function checkControlApi(cfg: DoctorConfig): CheckResult {
  const c = check('control-api-loopback', 'control API on loopback (or token set)');
  const api = cfg.controlApi;
  const where = `${api.address}:${api.port}`;
  if (!api.enabled) return c.pass('control API disabled');
  if (isLoopback(api.address)) return c.pass(`listening on ${where}`);
  if (api.hasToken) return c.pass(`listening on ${where} with a bearer token`);
  return c.fail(
    `listening on ${where} without a token: anyone who reaches it can change the config`,
    `set observability.control_api.address: 127.0.0.1 (or auth_token_file) in ${cfg.file}`,
  );
}

export async function checkMetrics(cfg: DoctorConfig, env: DoctorEnv): Promise<CheckResult> {
  const c = check('metrics-endpoint', 'metrics endpoint answers Prometheus text');
  const m = cfg.metrics;
  if (!m.enabled) return c.warn('metrics disabled', `set observability.metrics.enabled: true in ${cfg.file}`);
  const url = `${controlUrlFor(m.address, m.port)}${m.path}`;
  const running = 'is spooky-control running? systemctl status spooky-control';
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(env.fetchTimeoutMs) });
    const text = await res.text();
    if (res.status !== 200) return c.fail(`${url} answered ${res.status}`, running);
    const where = `point observability.metrics in ${cfg.file} at spooky-control's metrics listener`;
    if (!/^# (HELP|TYPE) /m.test(text)) return c.fail(`${url} answered without Prometheus text`, where);
    return c.pass(`${url} answers Prometheus text`);
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${env.fetchTimeoutMs} ms` : (e.cause?.code ?? e.message);
    return c.fail(`cannot reach ${url} (${why})`, running);
  }
}

export function checkRollback(cfg: DoctorConfig, env: DoctorEnv): CheckResult {
  const c = check('rollback', 'rollback files exist');
  const candidates = [
    join(cfg.stateDir, 'config', 'previous.yaml'),
    env.prevBinary,
    join(env.etcRoot, 'spooky', 'config.yaml.backup'),
    `${resolve(cfg.file)}.backup`,
  ];
  const unique = [...new Set(candidates)];
  const found = unique.filter((f) => existsSync(f));
  if (found.length > 0) return c.pass(found.join(', '));
  return c.warn(
    `none of ${unique.join(', ')} exists`,
    `cp ${cfg.file} ${cfg.file}.backup before each change (spooky-control keeps the previous applied config for spooky rollback)`,
  );
}

const readProc = (env: DoctorEnv, path: string) => {
  try {
    return readFileSync(join(env.procRoot, path), 'utf8').trim();
  } catch {
    return undefined;
  }
};

export function checkRmem(env: DoctorEnv): CheckResult {
  const c = check('rmem', 'UDP receive buffers (net.core.rmem_max, rmem_default)');
  const want = { rmem_max: RMEM_MAX, rmem_default: RMEM_DEFAULT };
  const low: string[] = [];
  const seen: string[] = [];
  for (const [name, min] of Object.entries(want)) {
    const value = Number(readProc(env, `sys/net/core/${name}`) ?? Number.NaN);
    seen.push(`${name} ${Number.isNaN(value) ? 'unreadable' : value}`);
    if (!(value >= min)) low.push(`net.core.${name}=${min}`);
  }
  if (low.length === 0) return c.pass(seen.join(', '));
  return c.fail(
    `${seen.join(', ')}; QUIC needs rmem_max ≥ ${RMEM_MAX} and rmem_default ≥ ${RMEM_DEFAULT}`,
    `sysctl -w ${low.join(' ')}, and persist both in /etc/sysctl.d/99-spooky.conf`,
  );
}

export function checkNofile(env: DoctorEnv): CheckResult {
  const c = check('nofile', 'open file limit (nofile)');
  const line = (readProc(env, 'self/limits') ?? '').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  const value = soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft ?? Number.NaN);
  const fix = `LimitNOFILE=${NOFILE_RECOMMENDED} in the systemd units, or "spooky soft nofile ${NOFILE_RECOMMENDED}" in /etc/security/limits.d/spooky.conf`;
  const detail = `soft limit ${soft ?? 'unreadable'} for this process`;
  if (!(value >= NOFILE_MIN)) return c.fail(`${detail}; at least ${NOFILE_MIN} needed`, fix);
  if (value < NOFILE_RECOMMENDED) return c.warn(`${detail}; ${NOFILE_RECOMMENDED} recommended`, fix);
  return c.pass(detail);
}

export function checkKernel(env: DoctorEnv): CheckResult {
  const c = check('kernel', 'kernel 5.0 or later (UDP GRO)');
  const release = readProc(env, 'sys/kernel/osrelease');
  const major = Number(/^(\d+)\./.exec(release ?? '')?.[1] ?? Number.NaN);
  if (major >= 5) return c.pass(`kernel ${release}`);
  return c.fail(`kernel ${release ?? 'unknown'}: QUIC needs the UDP GRO of 5.0`, 'upgrade the kernel to 5.0 or later');
}

export function checkPlatform(env: DoctorEnv): CheckResult {
  const c = check('platform', 'Linux x86_64 or arm64');
  const os = (readProc(env, 'sys/kernel/ostype') ?? process.platform).toLowerCase();
  const rawArch = readProc(env, 'sys/kernel/arch') ?? machine();
  const arch = ({ amd64: 'x86_64', x64: 'x86_64', aarch64: 'arm64' } as Record<string, string>)[rawArch] ?? rawArch;
  const detail = `${os} ${arch}`;
  if (os === 'linux' && arch === 'x86_64') return c.pass(detail);
  if (os === 'linux' && arch === 'arm64') {
    return c.warn(
      `${detail}: @matrixai/quic ships no linux-arm64 build`,
      'run on x86_64, or build @matrixai/quic for linux-arm64 from source',
    );
  }
  return c.fail(`${detail} is not supported in production`, 'run on Linux x86_64 (or arm64)');
}

export function checkNode(env: DoctorEnv): CheckResult {
  const c = check('node', `Node.js ${NODE_FLOOR_MAJOR} LTS or newer`);
  const detail = `Node.js v${env.nodeVersion} (${env.nodePath})`;
  if (nodeMajor(env.nodeVersion) >= NODE_FLOOR_MAJOR) return c.pass(detail);
  return c.fail(
    `${detail} is below ${NODE_FLOOR_MAJOR}: out of security support, and the daemons refuse to start on it`,
    NODE_UPGRADE_FIX,
  );
}

export function checkQuicStack(env: DoctorEnv): CheckResult {
  const c = check('quic-stack', 'QUIC engine without known advisories');
  const s = env.quicStack;
  const engine = `quiche ${s.quiche ?? 'version unknown'} (${s.binding} ${s.bindingVersion})`;
  if (s.quiche === null) {
    return c.warn(`${engine}: not a binding version Spooky knows`, `npm ci with the lockfile's ${s.binding}`);
  }
  if (s.advisories.length === 0) return c.pass(engine);
  return c.warn(
    `${engine}: ${s.advisories.map((a) => `${a.id} (${a.summary}; fixed in quiche ${a.fixedIn})`).join('; ')}. Spooky bounds them with its own limits (input that is not stream data, connection age, memory); see docs/security.md`,
    'keep performance.max_connection_age_ms and memory_limit_mib on; move to a binding on quiche 0.20.1 or later once one is available (docs/security.md)',
  );
}

export function checkAllocator(env: DoctorEnv): CheckResult {
  const c = check('allocator', 'jemalloc for the data plane');
  const lib = findJemalloc(env.fileExists);
  if (lib !== undefined) return c.pass(`${lib}: the data plane runs on it`);
  return c.warn(
    "libjemalloc.so.2 not found: the data plane runs on glibc's malloc, up to 13 % more CPU per upload",
    'apt-get install libjemalloc2 (Fedora/RHEL: dnf install jemalloc), then restart spooky-dataplane',
  );
}

/** Every check, in the checklist's order. */
export async function runChecks(cfg: DoctorConfig, env: DoctorEnv): Promise<CheckResult[]> {
  return [
    checkTlsTrusted(cfg, env),
    checkTlsExpiry(cfg, env),
    checkKeyPermissions(cfg, env),
    checkConfigValid(cfg),
    await checkHealthEndpoints(cfg, env),
    checkControlApi(cfg),
    await checkMetrics(cfg, env),
    checkRollback(cfg, env),
    checkRmem(env),
    checkNofile(env),
    checkKernel(env),
    checkPlatform(env),
    checkNode(env),
    checkQuicStack(env),
    checkAllocator(env),
  ];
}
