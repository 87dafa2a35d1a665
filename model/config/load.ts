// Loading: YAML text → validated Config, or every problem at once with its YAML path and the line
// and column of the offending key (or of its nearest existing parent when the key is missing).
// Wording lives in issues.ts and yaml-errors.ts; file checks in files.ts.

import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { CONFIG_MAX_BYTES, FileRefusedError, readRegularTextFile } from '../../lib/regular-file.js';
import { checkCrossFieldRules, checkReservedNames } from './cross-field.js';
import {
  checkCaBundle,
  checkCertificatePair,
  checkReadableFile,
  checkWritableFilePath,
  type FileCheckIssue,
} from './files.js';
import { type ConfigIssue, dedupe, errorMap, formatPath, issuesFromZod, locate } from './issues.js';
import { type Config, ConfigSchema } from './schema.js';
import { explainYamlError } from './yaml-errors.js';

export type { ConfigIssue } from './issues.js';
export { editDistance, formatPath } from './issues.js';

/** Warnings never fail a load: an expiring certificate, a disabled backend TLS check. */
export type LoadResult =
  | { ok: true; config: Config; warnings: ConfigIssue[] }
  | { ok: false; errors: ConfigIssue[]; warnings: ConfigIssue[] };

export interface LoadOptions {
  /** Check the certificate, key, CA and token files, resolving relative paths against this. */
  baseDir?: string;
  /** For expiry checks (tests). */
  now?: Date;
  /**
   * Whose control.* TLS files to check: spooky-control needs only control.listen's, a data plane
   * only control.server's (one file may carry both), an applied config neither (control.* are
   * read from each process's own file at start). Both when absent (`spooky validate`).
   */
  controlSides?: readonly ControlSide[];
}

export type ControlSide = 'listen' | 'server';

function checkReferencedFiles(
  config: Config,
  baseDir: string,
  now: Date,
  sides: readonly ControlSide[] = ['listen', 'server'],
): FileCheckIssue[] {
  const issues: FileCheckIssue[] = [];
  const { tls } = config.listen;
  issues.push(
    ...checkCertificatePair(
      { path: ['listen', 'tls', 'cert'], file: tls.cert },
      { path: ['listen', 'tls', 'key'], file: tls.key },
      baseDir,
      now,
    ),
  );
  if (tls.client_auth.enabled && tls.client_auth.ca_file !== undefined) {
    const path = ['listen', 'tls', 'client_auth', 'ca_file'];
    issues.push(...checkCaBundle({ path, file: tls.client_auth.ca_file }, baseDir, now));
  }
  const up = config.upstream_tls;
  if (up.ca_file !== undefined) {
    issues.push(...checkCaBundle({ path: ['upstream_tls', 'ca_file'], file: up.ca_file }, baseDir, now));
  }
  if (up.client_cert !== undefined && up.client_key !== undefined) {
    issues.push(
      ...checkCertificatePair(
        { path: ['upstream_tls', 'client_cert'], file: up.client_cert },
        { path: ['upstream_tls', 'client_key'], file: up.client_key },
        baseDir,
        now,
      ),
    );
  }
  issues.push(...checkControlTls(config, baseDir, now, sides));
  const tokenFile = config.observability.control_api.auth_token_file;
  if (tokenFile !== undefined) {
    const path = ['observability', 'control_api', 'auth_token_file'];
    issues.push(...checkReadableFile({ path, file: tokenFile }, baseDir));
  }
  const logFile = config.log.file;
  if (logFile?.enabled && logFile.path !== undefined) {
    issues.push(...checkWritableFilePath({ path: ['log', 'file', 'path'], file: logFile.path }, baseDir));
  }
  return issues;
}

/** The fleet's mutual TLS files, for whichever side of the control connection is on. */
function checkControlTls(config: Config, baseDir: string, now: Date, sides: readonly ControlSide[]): FileCheckIssue[] {
  const issues: FileCheckIssue[] = [];
  const { listen, server } = config.control;
  const pair = (side: string, cert: string, key: string) =>
    checkCertificatePair(
      { path: ['control', side, 'tls', 'cert'], file: cert },
      { path: ['control', side, 'tls', 'key'], file: key },
      baseDir,
      now,
    );
  if (sides.includes('listen') && listen.enabled && listen.tls) {
    issues.push(...pair('listen', listen.tls.cert, listen.tls.key));
    const path = ['control', 'listen', 'tls', 'client_ca'];
    issues.push(...checkCaBundle({ path, file: listen.tls.client_ca }, baseDir, now));
  }
  if (sides.includes('server') && server.enabled && server.tls) {
    issues.push(...pair('server', server.tls.cert, server.tls.key));
    issues.push(...checkCaBundle({ path: ['control', 'server', 'tls', 'ca'], file: server.tls.ca }, baseDir, now));
  }
  return issues;
}

/** Valid but risky settings. */
function configWarnings(config: Config): FileCheckIssue[] {
  const out: FileCheckIssue[] = [];
  if (!config.upstream_tls.verify) {
    out.push({
      path: ['upstream_tls', 'verify'],
      severity: 'warning',
      message:
        'backend certificates are not verified: anyone on the network path can impersonate a backend; set verify: true and ca_file',
    });
  }
  return out;
}

function byPosition(a: ConfigIssue, b: ConfigIssue): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0);
}

export function loadConfigText(text: string, fileName: string, opts: LoadOptions = {}): LoadResult {
  const lines = new LineCounter();
  // merge: `<<: *defaults` lets operators share health_check blocks between backends.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    // The tree is unreliable after a syntax error; schema messages would only add noise. One
    // error per line: the parser often reports a single slip twice.
    const errors: ConfigIssue[] = [];
    for (const err of doc.errors) {
      const { offset, message } = explainYamlError(err, text);
      const { line, col } = lines.linePos(offset);
      if (errors.some((e) => e.line === line)) continue;
      errors.push({ path: '', line: Math.max(line, 1), column: Math.max(col, 1), message: `YAML: ${message}` });
    }
    return { ok: false, errors, warnings: [] };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `YAML: ${(err as Error).message}` }], warnings: [] };
  }
  const reserved: FileCheckIssue[] = [];
  checkReservedNames(data, (path, message) => reserved.push({ path, severity: 'error', message }));
  const result = ConfigSchema.safeParse(data, { error: errorMap });
  if (result.success) {
    const config = result.data;
    const found = [...reserved, ...configWarnings(config)];
    if (opts.baseDir !== undefined)
      found.push(...checkReferencedFiles(config, opts.baseDir, opts.now ?? new Date(), opts.controlSides));
    const at = (issue: FileCheckIssue): ConfigIssue => {
      const { line, col } = lines.linePos(locate(doc, issue.path));
      return {
        path: formatPath(issue.path),
        line: Math.max(line, 1),
        column: Math.max(col, 1),
        message: issue.message,
      };
    };
    const errors = found
      .filter((i) => i.severity === 'error')
      .map(at)
      .sort(byPosition);
    const warnings = found
      .filter((i) => i.severity === 'warning')
      .map(at)
      .sort(byPosition);
    return errors.length > 0 ? { ok: false, errors, warnings } : { ok: true, config, warnings };
  }
  const issues: z.core.$ZodIssue[] = [...result.error.issues];
  for (const r of reserved) issues.push({ code: 'custom', path: r.path, message: r.message });
  // zod skips the cross-field rule when a field aborted (a non-integer number does); run it on
  // the raw data so those problems are still reported in the same pass.
  checkCrossFieldRules(data, (path, message) => issues.push({ code: 'custom', path, message }));
  const errors = dedupe(issuesFromZod(issues, doc, lines, data, fileName));
  errors.sort(byPosition);
  return { ok: false, errors, warnings: [] };
}

/** The text of a config file: a regular file of at most CONFIG_MAX_BYTES (see lib/regular-file.ts). */
export function readConfigFileText(path: string): string {
  return readRegularTextFile(path, CONFIG_MAX_BYTES);
}

/** `cannot read FILE: why`, for an error thrown by readConfigFileText. */
export function describeConfigReadError(path: string, err: unknown): string {
  if (err instanceof FileRefusedError) return `cannot read the config file: ${err.message}`;
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  return `cannot read ${path}: ${reason}`;
}

/** Loads a config file; its certificate, key, CA and token files are checked too. */
export function loadConfigFile(
  path: string,
  opts: Omit<LoadOptions, 'baseDir'> & { checkFiles?: boolean } = {},
): LoadResult {
  let text: string;
  try {
    text = readConfigFileText(path);
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: describeConfigReadError(path, err) }], warnings: [] };
  }
  const baseDir = opts.checkFiles === false ? undefined : dirname(resolve(path));
  return loadConfigText(text, path, { baseDir, now: opts.now, controlSides: opts.controlSides });
}

/**
 * One line per issue: `config.yaml:12:9: upstream.api.backends[1].weight: expected ...`;
 * warnings say so after the position.
 */
export function formatIssues(
  fileName: string,
  issues: readonly ConfigIssue[],
  kind: 'error' | 'warning' = 'error',
): string {
  const label = kind === 'warning' ? 'warning: ' : '';
  return issues
    .map((issue) => {
      const where = issue.line === undefined ? fileName : `${fileName}:${issue.line}:${issue.column ?? 1}`;
      return issue.path === ''
        ? `${where}: ${label}${issue.message}`
        : `${where}: ${label}${issue.path}: ${issue.message}`;
    })
    .join('\n');
}
