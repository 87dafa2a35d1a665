/**
 * `spooky doctor [--config FILE] [--json]`: the seed page's production checklist and system
 * requirements as automatic checks (doctor-checks.ts), one line per check with the fix for each
 * warning and failure. Exit 1 when any check fails, else 0. The hidden --proc-root and --etc-root
 * options point the host checks at a fake procfs and /etc (tests).
 */
import { dirname, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { parse } from 'yaml';
import { PEM_MAX_BYTES, readRegularTextFile } from '../lib/regular-file.js';
import { loadConfigFile, readConfigFileText } from '../model/config/load.js';
import { buildUpstreamTls } from '../model/config/runtime.js';
import { BackendSchema, ConfigSchema, HealthCheckSchema } from '../model/config/schema.js';
import {
  type CheckResult,
  type DoctorBackend,
  type DoctorConfig,
  type DoctorEnv,
  doctorEnv,
  runChecks,
  systemTrustStore,
} from './doctor-checks.js';
import { exitAfterOutput } from './exit.js';

export const DEFAULT_CONFIG_FILE = '/etc/spooky/config.yaml';

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const str = (v: unknown, fallback?: string) => (typeof v === 'string' && v !== '' ? v : fallback);
const num = (v: unknown, fallback: number) => (typeof v === 'number' ? v : fallback);

/** The schema's defaults for what doctor reads, used where an invalid file leaves a value unusable. */
const DEFAULTS = {
  healthCheck: HealthCheckSchema.parse({}),
  protocol: BackendSchema.shape.protocol.parse(undefined),
  upstreamTls: ConfigSchema.shape.upstream_tls.parse(undefined),
  security: ConfigSchema.shape.security.parse(undefined),
  observability: ConfigSchema.shape.observability.parse(undefined),
  control: ConfigSchema.shape.control.parse(undefined),
};

/**
 * Validates the file, then reads the settings from the validated config or, when validation
 * failed, from the raw YAML with the schema's defaults (both have the same shape).
 */
export function readDoctorConfig(file: string, env: DoctorEnv): DoctorConfig {
  const load = loadConfigFile(file, { now: env.now });
  let data: unknown = {};
  if (load.ok) data = load.config;
  else {
    try {
      data = parse(readConfigFileText(file), { merge: true });
    } catch {
      // unreadable or not YAML: config-valid says so; the other checks use the defaults
    }
  }
  const base = dirname(resolve(file));
  const path = (v: unknown) => (str(v) === undefined ? undefined : resolve(base, v as string));
  const pem = (v: unknown) => {
    try {
      return path(v) === undefined ? undefined : readRegularTextFile(path(v)!, PEM_MAX_BYTES);
    } catch {
      return undefined;
    }
  };
  const root = rec(data);
  const tls = rec(rec(root.listen).tls);
  const backends: DoctorBackend[] = [];
  for (const pool of Object.values(rec(root.upstream))) {
    const list = rec(pool).backends;
    for (const [i, raw] of (Array.isArray(list) ? list : []).entries()) {
      const b = rec(raw);
      const hc = b.health_check === undefined ? undefined : rec(b.health_check);
      backends.push({
        id: str(b.id, `backend #${i + 1}`)!,
        address: str(b.address, '')!,
        protocol: b.protocol === 'http1' || b.protocol === 'h2' ? b.protocol : DEFAULTS.protocol,
        healthPath: hc === undefined ? undefined : str(hc.path, DEFAULTS.healthCheck.path),
      });
    }
  }
  const up = rec(root.upstream_tls);
  const obs = rec(root.observability);
  const api = rec(obs.control_api);
  const metrics = rec(obs.metrics);
  const { control_api: defaultApi, metrics: defaultMetrics } = DEFAULTS.observability;
  return {
    file,
    load,
    cert: path(tls.cert),
    key: path(tls.key),
    keyGroup: str(rec(rec(root.security).privileges).group, DEFAULTS.security.privileges.group)!,
    backends,
    upstreamTls: buildUpstreamTls(
      {
        verify: typeof up.verify === 'boolean' ? up.verify : DEFAULTS.upstreamTls.verify,
        ca_file: str(up.ca_file),
        server_name: str(up.server_name),
        client_cert: str(up.client_cert),
        client_key: str(up.client_key),
      },
      pem,
    ),
    controlApi: {
      enabled: typeof api.enabled === 'boolean' ? api.enabled : defaultApi.enabled,
      address: str(api.address, defaultApi.address)!,
      port: num(api.port, defaultApi.port),
      hasToken: str(api.auth_token) !== undefined || str(api.auth_token_file) !== undefined,
    },
    metrics: {
      enabled: typeof metrics.enabled === 'boolean' ? metrics.enabled : defaultMetrics.enabled,
      address: str(metrics.address, defaultMetrics.address)!,
      port: num(metrics.port, defaultMetrics.port),
      path: str(metrics.path, defaultMetrics.path)!,
    },
    stateDir: resolve(base, str(rec(root.control).state_dir, DEFAULTS.control.state_dir)!),
  };
}

const LABELS = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

/** `PASS  title — detail`, and `      fix: ...` under a warning or failure; then a summary line. */
export function formatReport(checks: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${LABELS[c.status]}  ${c.title} — ${c.detail}`);
    if (c.status !== 'pass' && c.fix !== '') lines.push(`      fix: ${c.fix}`);
  }
  const count = (s: CheckResult['status']) => checks.filter((c) => c.status === s).length;
  lines.push('', `${checks.length} checks: ${count('pass')} pass, ${count('warn')} warn, ${count('fail')} fail`);
  return `${lines.join('\n')}\n`;
}

/** Runs every check, prints the report (or `{ ok, checks }` with json) and returns the exit code. */
export async function runDoctor(
  file: string,
  opts: { json?: boolean; env?: Partial<DoctorEnv> } = {},
): Promise<number> {
  const env = doctorEnv(opts.env);
  const checks = await runChecks(readDoctorConfig(file, env), env);
  const ok = checks.every((c) => c.status !== 'fail');
  process.stdout.write(opts.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : formatReport(checks));
  return ok ? 0 : 1;
}

interface DoctorOptions {
  config?: string;
  json?: boolean;
  procRoot?: string;
  etcRoot?: string;
  nodeVersion?: string;
  caFile?: string;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check the config and this host against the production checklist, with the fix for each problem')
    .option('-c, --config <file>', `YAML config file (default: ${DEFAULT_CONFIG_FILE})`)
    .option('--json', 'machine-readable output: { ok, checks: [{ id, title, status, detail, fix }] }')
    .option('--ca-file <file>', 'also trust the CA certificates in this PEM file (a private CA every client trusts)')
    .addOption(new Option('--proc-root <dir>').hideHelp())
    .addOption(new Option('--etc-root <dir>').hideHelp())
    .addOption(new Option('--node-version <version>').hideHelp())
    // `spooky --config FILE doctor` gives it to the root program: read both.
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<DoctorOptions>();
      const env: Partial<DoctorEnv> = {};
      if (o.procRoot !== undefined) env.procRoot = o.procRoot;
      if (o.etcRoot !== undefined) env.etcRoot = o.etcRoot;
      if (o.nodeVersion !== undefined) env.nodeVersion = o.nodeVersion;
      let code: number;
      try {
        if (o.caFile !== undefined) {
          const pems = readRegularTextFile(o.caFile, PEM_MAX_BYTES).match(
            /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
          );
          if (!pems) throw new Error(`--ca-file ${o.caFile}: no PEM certificate`);
          env.trustedCas = () => [...systemTrustStore(), ...pems];
        }
        code = await runDoctor(o.config ?? DEFAULT_CONFIG_FILE, { json: o.json ?? false, env });
      } catch (e) {
        process.stderr.write(`spooky doctor: ${(e as Error).message}\n`);
        code = 1;
      }
      await exitAfterOutput(code);
    });
}
