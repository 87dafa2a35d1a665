/**
 * The commands that talk to spooky-control: apply, reload, rollback, status, dataplanes, backends, drain,
 * undrain. Human output by default (progress and errors on stderr, results on stdout), `--json`
 * prints the API's bodies on stdout. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type {
  AppliedConfigBody,
  ApplyBody,
  BackendInfo,
  BackendsBody,
  DataPlaneInfo,
  DataPlaneOutcome,
  DataPlanesBody,
  DrainBody,
  ErrorBody,
  HealthBody,
  OverloadInfo,
  ReadyBody,
  ValidateBody,
} from '../controlplane/api/types.js';
import { describeConfigReadError, formatIssues, loadConfigFile, readConfigFileText } from '../model/config/load.js';
import {
  APPLY_TIMEOUT_MS,
  type ConnectionOptions,
  type ControlClient,
  ControlFailure,
  type ControlResponse,
  connect,
  errorMessage,
} from './control-client.js';
import { exitAfterOutput } from './exit.js';
import { summarize, summaryLine } from './validate.js';

export interface ControlOptions extends ConnectionOptions {
  json?: boolean;
}

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);
const printJson = (v: unknown) => out(JSON.stringify(v, null, 2));
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Plain columns separated by two spaces; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '))
    .join('\n');
}

/** 3d 4h, 2h 5m, 4m 10s, 12s. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function ago(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : `${formatDuration(Date.now() - t)} ago`;
}

const OUTCOME_WORDS: Record<Exclude<DataPlaneOutcome['result'], 'nack'>, string> = {
  ack: 'ACK',
  timeout: 'no answer (timeout)',
  not_connected: 'not connected (gets it when it reconnects)',
};

function outcomeLine(d: DataPlaneOutcome): string {
  const what = d.result === 'nack' ? `NACK: ${d.error ?? 'no reason given'}` : OUTCOME_WORDS[d.result];
  return `${d.node_id}: ${what}${d.restart_required ? ' (restart of spooky-dataplane required)' : ''}`;
}

/**
 * Exit code of an apply the control plane took while no data plane was connected: the config is
 * saved and current, but nothing serves it yet (a script must not take that for success unless
 * it said `--allow-empty`).
 */
export const EXIT_NO_DATAPLANE = 3;

/**
 * Exit code of an apply that some connected data plane did not answer within the timeout (or left
 * during the push): the config is current and the others ACKed, but the rollout is not confirmed
 * everywhere.
 */
export const EXIT_UNCONFIRMED = 4;

/** Shared by apply and rollback: the outcome of POST /v1/config or /v1/config/rollback. */
function reportApply(
  res: ControlResponse<ApplyBody | ErrorBody>,
  source: string,
  json: boolean,
  allowEmpty = false,
): number {
  const ok = res.status === 200;
  const b = res.body as ApplyBody;
  // Known nodes that are away are reported, but they do not make a push "served".
  const connected = ok ? b.dataplanes.filter((d) => d.result !== 'not_connected') : [];
  const served = !ok || b.unchanged || connected.length > 0;
  const silent = ok && !b.unchanged ? b.dataplanes.filter((d) => d.result === 'timeout').length : 0;
  const code = !ok ? 1 : !served && !allowEmpty ? EXIT_NO_DATAPLANE : silent > 0 ? EXIT_UNCONFIRMED : 0;
  if (json) {
    printJson(res.body);
    return code;
  }
  if (ok) {
    if (b.unchanged) {
      err(`unchanged: version ${b.version} already applied`);
      return 0;
    }
    err(`pushed: version ${b.version}`);
    if (!served) {
      err(
        `${allowEmpty ? 'note' : 'warning'}: no data plane is connected: version ${b.version} is saved and each data plane gets it when it connects, but nothing serves it now (see spooky dataplanes; a data plane that cannot reach control.socket logs why)`,
      );
      return code;
    }
    const acked = connected.filter((d) => d.result === 'ack').length;
    const away = b.dataplanes.length - connected.length;
    err(`${acked} of ${plural(connected.length, 'data plane')} ACKed${away > 0 ? ` (${away} not connected)` : ''}`);
    for (const d of b.dataplanes) err(`  ${outcomeLine(d)}`);
    if (silent > 0) {
      err(
        `warning: ${plural(silent, 'data plane')} did not confirm (no answer in time, or disconnected during the push): version ${b.version} is current and reaches ${silent === 1 ? 'it' : 'them'} when ${silent === 1 ? 'it answers or reconnects' : 'they answer or reconnect'} (see spooky dataplanes)`,
      );
    }
    return code;
  }
  const e = res.body as ErrorBody;
  if (res.status === 422 && e.errors !== undefined && e.errors.length > 0) {
    err(formatIssues(source, e.errors));
    err(`${source}: ${plural(e.errors.length, 'error')}; nothing was applied`);
    return 1;
  }
  err(`spooky: ${errorMessage(e, res.status)}`);
  for (const d of e.dataplanes ?? []) if (d.result === 'nack' || d.result === 'timeout') err(outcomeLine(d));
  // A refused push (the data planes' answers come with it): nothing changed anywhere.
  if (res.status === 409 && e.dataplanes !== undefined) err('the previous config stays active');
  return 1;
}

export async function runApply(
  file: string,
  opts: ControlOptions & { dryRun?: boolean; allowEmpty?: boolean; fileChecks?: boolean },
): Promise<number> {
  const json = opts.json ?? false;
  if (!existsSync(file) || statSync(file).isDirectory()) {
    err(`spooky apply: ${file}: ${existsSync(file) ? 'is a directory' : 'no such file'}`);
    return 2;
  }
  // control.* of an applied config do nothing (each daemon reads its own file): not checked here.
  // --no-file-checks: the paths are the control host's (a remote spooky-control, a pod).
  const local = loadConfigFile(file, { controlSides: [], checkFiles: opts.fileChecks !== false });
  if (!local.ok) {
    if (json) printJson({ ok: false, file, errors: local.errors, warnings: local.warnings });
    else {
      if (local.warnings.length > 0) err(formatIssues(file, local.warnings, 'warning'));
      err(formatIssues(file, local.errors));
      err(`${file}: ${plural(local.errors.length, 'error')}; nothing was applied`);
    }
    return 1;
  }
  const client = connect(opts);
  if (!json) {
    if (local.warnings.length > 0) err(formatIssues(file, local.warnings, 'warning'));
    err(`validated: ${summaryLine(summarize(local.config))}`);
  }
  let yaml: string;
  try {
    yaml = readConfigFileText(file);
  } catch (e) {
    err(`spooky apply: ${describeConfigReadError(file, e)}`);
    return 1;
  }
  if (opts.dryRun) {
    const res = await client.request<ValidateBody | ErrorBody>('POST', '/v1/config/validate', { body: yaml });
    if (res.status !== 200) {
      if (json) printJson(res.body);
      else err(`spooky: ${errorMessage(res.body, res.status)}`);
      return 1;
    }
    const v = res.body as ValidateBody;
    if (json) printJson(v);
    else if (!v.ok) {
      err(formatIssues(file, v.errors));
      err(`${file}: ${plural(v.errors.length, 'error')} according to spooky-control; nothing was applied`);
    } else if (v.diff !== '') out(v.diff.replace(/\n$/, ''));
    else
      out(
        v.files_changed
          ? 'no changes to the text, but a file it names changed (a renewed certificate?): apply pushes it as a new version'
          : 'no changes',
      );
    return v.ok ? 0 : 1;
  }
  const res = await client.request<ApplyBody | ErrorBody>('POST', '/v1/config', {
    body: yaml,
    timeoutMs: APPLY_TIMEOUT_MS,
  });
  return reportApply(res, file, json, opts.allowEmpty);
}

/** `spooky reload`: the applied config again with its files re-read (after a certificate renewal). */
export async function runReload(opts: ControlOptions & { allowEmpty?: boolean }): Promise<number> {
  const client = connect(opts);
  const res = await client.request<ApplyBody | ErrorBody>('POST', '/v1/config/reload', { timeoutMs: APPLY_TIMEOUT_MS });
  return reportApply(res, 'applied config', opts.json ?? false, opts.allowEmpty);
}

export async function runRollback(opts: ControlOptions & { allowEmpty?: boolean }): Promise<number> {
  const client = connect(opts);
  const res = await client.request<ApplyBody | ErrorBody>('POST', '/v1/config/rollback', {
    timeoutMs: APPLY_TIMEOUT_MS,
  });
  return reportApply(res, 'previous config', opts.json ?? false, opts.allowEmpty);
}

/** GET that must answer 200 (or one of `also`); anything else is a failure naming the API's error. */
async function getJson<T>(client: ControlClient, path: string, also: number[] = []) {
  const res = await client.request<T | ErrorBody>('GET', path);
  if (res.status !== 200 && !also.includes(res.status)) {
    throw new ControlFailure(`spooky: GET ${path}: ${errorMessage(res.body, res.status)}`);
  }
  return res as ControlResponse<T>;
}

export async function runStatus(opts: ControlOptions): Promise<number> {
  const client = connect(opts);
  const health = await getJson<HealthBody>(client, '/health');
  const ready = await getJson<ReadyBody>(client, '/ready', [503]);
  const cfg = await getJson<AppliedConfigBody>(client, '/v1/config', [404]);
  const planes = await getJson<DataPlanesBody>(client, '/v1/dataplanes');
  const config = cfg.status === 404 ? null : (({ yaml: _, ...rest }) => rest)(cfg.body);
  if (opts.json) {
    printJson({ control: client.url, health: health.body, ready: ready.body, config, dataplanes: planes.body });
    return 0;
  }
  const h = health.body;
  out(`control API: up at ${client.url} (spooky-control ${h.version}, uptime ${formatDuration(h.uptime_ms)})`);
  out(
    config === null
      ? 'config: no config applied yet'
      : `config: version ${config.version}, sha256 ${config.sha256.slice(0, 12)}, applied ${config.applied_at} by ${config.applied_by}`,
  );
  const dps = planes.body.dataplanes.filter((d) => d.connected);
  const list = dps.map((d) => `${d.node_id} v${d.served_version}`).join(', ');
  out(dps.length === 0 ? 'data planes: none connected' : `data planes: ${dps.length} connected: ${list}`);
  const away = planes.body.dataplanes.filter((d) => !d.connected).map((d) => d.node_id);
  if (away.length > 0) out(`data planes not connected: ${away.join(', ')}`);
  for (const d of dps) if (d.overload) out(`overload ${d.node_id}: ${overloadText(d.overload)}`);
  const r = ready.body;
  out(r.ready ? 'ready: yes' : `ready: no (${r.reasons.join('; ') || 'no reason given'})`);
  return 0;
}

/** Adaptive admission and brownout of one data plane, in one line. */
export function overloadText(o: OverloadInfo): string {
  const a = o.adaptive_admission;
  const adaptive = a.enabled
    ? `adaptive admission limit ${a.limit}, ${a.in_flight} in flight, ${a.shed_total} shed`
    : `adaptive admission off, ${a.in_flight} in flight`;
  const b = o.brownout;
  const brownout = b.enabled ? `brownout ${b.active ? 'ACTIVE' : 'inactive'}, ${b.shed_total} shed` : 'brownout off';
  return `${adaptive}; ${brownout}`;
}

function dataPlaneRow(d: DataPlaneInfo): string[] {
  const ack = d.last_ack === null ? '-' : `v${d.last_ack.version} ${ago(d.last_ack.at)}`;
  const nack = d.last_nack === null ? '-' : `v${d.last_nack.version} ${ago(d.last_nack.at)}: ${d.last_nack.error}`;
  const rps = Number.isInteger(d.requests_per_second) ? d.requests_per_second : d.requests_per_second.toFixed(1);
  if (!d.connected) {
    const since = d.disconnected_at === null ? '' : ` since ${ago(d.disconnected_at)}`;
    return [d.node_id, '-', `v${d.served_version}`, ack, nack, `not connected${since}`, '-'];
  }
  return [d.node_id, String(d.pid), `v${d.served_version}`, ack, nack, String(d.active_connections), String(rps)];
}

export async function runDataPlanes(opts: ControlOptions): Promise<number> {
  const { body } = await getJson<DataPlanesBody>(connect(opts), '/v1/dataplanes');
  if (opts.json) printJson(body);
  else if (body.dataplanes.length === 0) out(`no data planes connected (current version ${body.current_version})`);
  else {
    const header = ['NODE', 'PID', 'VERSION', 'LAST ACK', 'LAST NACK', 'CONNS', 'REQ/S'];
    out(table([header, ...body.dataplanes.map(dataPlaneRow)]));
  }
  return 0;
}

function probeText(p: BackendInfo['last_probe']): string {
  if (p === null) return '-';
  const what = p.ok ? `ok ${p.status ?? ''}`.trim() : `failed: ${p.error ?? p.status ?? 'unknown'}`;
  return `${what} ${p.latency_ms}ms ${ago(p.at)}`;
}

export async function runBackends(opts: ControlOptions): Promise<number> {
  const { body } = await getJson<BackendsBody>(connect(opts), '/v1/backends');
  if (opts.json) printJson(body);
  else if (body.backends.length === 0) out('no backends configured');
  else {
    const rows = body.backends.map((b) => [
      b.id,
      b.pool,
      b.state,
      ago(b.since),
      probeText(b.last_probe),
      String(b.in_flight),
      b.drained ? 'yes' : 'no',
    ]);
    out(table([['ID', 'POOL', 'STATE', 'SINCE', 'LAST PROBE', 'IN-FLIGHT', 'DRAINED'], ...rows]));
  }
  return 0;
}

export async function runDrain(id: string, drain: boolean, opts: ControlOptions): Promise<number> {
  const verb = drain ? 'drain' : 'undrain';
  const path = `/v1/backends/${encodeURIComponent(id)}/${verb}`;
  const res = await connect(opts).request<DrainBody | ErrorBody>('POST', path);
  if (res.status === 404) {
    err(`spooky: no backend with id ${id}`);
    return 1;
  }
  if (res.status !== 200) {
    err(`spooky: ${verb} ${id}: ${errorMessage(res.body, res.status)}`);
    return 1;
  }
  if (opts.json) printJson(res.body);
  else out(`${verb}ed ${id}`);
  return 0;
}

/** Runs an action and exits with its code; ControlFailures become their sentence on stderr. */
async function exitWith(action: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await action();
  } catch (e) {
    err(e instanceof ControlFailure ? e.message : `spooky: ${(e as Error).message}`);
    code = e instanceof ControlFailure ? e.exitCode : 1;
  }
  return exitAfterOutput(code);
}

function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--control <url>', 'control API URL (default: $SPOOKY_CONTROL, the --config file, http://127.0.0.1:9902)')
    .option('--token <token>', 'bearer token (default: $SPOOKY_TOKEN, --token-file, the --config file)')
    .option('--token-file <file>', 'read the bearer token from this file')
    .option('--config <file>', 'config file to take the control API address and token defaults from')
    .option('--json', 'machine-readable output');
}

/** `spooky --config FILE status` gives --config to the program (main.ts): read options with globals. */
const optionsOf = <T>(cmd: Command) => cmd.optsWithGlobals<T & ControlOptions>();

export function registerControlCommands(program: Command): void {
  withCommonOptions(program.command('apply'))
    .description('validate a config file, push it to every data plane and wait for their ACKs')
    .argument('<file>', 'YAML config file')
    .option('--dry-run', 'only validate on spooky-control and print the diff against the applied config')
    .option('--allow-empty', 'exit 0 even when no data plane is connected (the config is saved and current)')
    .option(
      '--no-file-checks',
      'skip checking the certificate, key and CA files here (spooky-control checks them where it runs)',
    )
    .action((file: string, _o: unknown, cmd: Command) =>
      exitWith(() => runApply(file, optionsOf<{ dryRun?: boolean; allowEmpty?: boolean; fileChecks?: boolean }>(cmd))),
    );
  withCommonOptions(program.command('reload'))
    .description(
      're-apply the applied config with the files it names re-read: a certificate or key renewed in place goes out as a new version',
    )
    .option('--allow-empty', 'exit 0 even when no data plane is connected')
    .action((_o: unknown, cmd: Command) => exitWith(() => runReload(optionsOf<{ allowEmpty?: boolean }>(cmd))));
  withCommonOptions(program.command('rollback'))
    .description('re-apply the previous config')
    .option('--allow-empty', 'exit 0 even when no data plane is connected')
    .action((_o: unknown, cmd: Command) => exitWith(() => runRollback(optionsOf<{ allowEmpty?: boolean }>(cmd))));
  withCommonOptions(program.command('status'))
    .description('control API, applied config, connected data planes and readiness at a glance')
    .action((_o: unknown, cmd: Command) => exitWith(() => runStatus(optionsOf(cmd))));
  withCommonOptions(program.command('dataplanes'))
    .description('connected data planes: served version, last ACK/NACK, connections, requests/s')
    .action((_o: unknown, cmd: Command) => exitWith(() => runDataPlanes(optionsOf(cmd))));
  withCommonOptions(program.command('backends'))
    .description('every backend: pool, health state, last probe, in-flight requests, drained flag')
    .action((_o: unknown, cmd: Command) => exitWith(() => runBackends(optionsOf(cmd))));
  for (const drain of [true, false]) {
    withCommonOptions(program.command(drain ? 'drain' : 'undrain'))
      .description(drain ? 'stop sending new requests to a backend' : 'send requests to a drained backend again')
      .argument('<id>', 'backend id')
      .action((id: string, _o: unknown, cmd: Command) => exitWith(() => runDrain(id, drain, optionsOf(cmd))));
  }
}
