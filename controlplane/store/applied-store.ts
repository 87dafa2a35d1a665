/**
 * The applied config on disk under `control.state_dir/config/`: `current.yaml` + `current.json`
 * (version, sha256, when, by whom, the directory relative paths resolve against) and the same
 * for `previous`, which `rollback` re-applies. Every write is atomic (lib/atomic-file.ts), the
 * previous pair first, so a crash leaves either the old or the new state. `version` holds the
 * highest version ever offered to a data plane, written before the offer, so a restart never
 * numbers different content with a version a data plane may already serve.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type StagedFile, stageFile, writeFileAtomic } from '../../lib/atomic-file.js';

export interface AppliedRecord {
  version: number;
  sha256: string;
  appliedAt: string;
  appliedBy: string;
  /** Directory that relative file paths in the YAML resolve against. */
  baseDir: string;
  /**
   * What the snapshot served (the files the YAML names included; see ControlPlane): a restart
   * that finds those files changed serves them under a new version. Absent in older records.
   */
  contentSha256?: string;
  yaml: string;
}

type Meta = Omit<AppliedRecord, 'yaml'>;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class AppliedStore {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'config');
  }

  /** Creates the directory; throws with the path when it cannot. */
  init(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
  }

  current(): AppliedRecord | null {
    return this.read('current');
  }

  previous(): AppliedRecord | null {
    return this.read('previous');
  }

  /**
   * Durably records that `version` is about to be offered to data planes (call before the push):
   * `highestVersion()` after any crash is at least this.
   */
  reserveVersion(version: number): void {
    if (version <= this.highestVersion()) return;
    writeFileAtomic(join(this.dir, 'version'), `${version}\n`, 0o640);
  }

  /** The highest version ever reserved or committed (0: none). */
  highestVersion(): number {
    let reserved = 0;
    try {
      const n = Number(readFileSync(join(this.dir, 'version'), 'utf8').trim());
      if (Number.isSafeInteger(n) && n > 0) reserved = n;
    } catch {
      // absent: only the committed records count
    }
    return Math.max(reserved, this.current()?.version ?? 0, this.previous()?.version ?? 0);
  }

  /** Makes `record` current; the old current becomes previous. */
  commit(record: AppliedRecord): void {
    this.stage(record).commit();
  }

  /**
   * Writes everything `commit` needs without making it current: a full or read-only state
   * directory fails here, before the config reaches any data plane.
   */
  stage(record: AppliedRecord): { commit(): void; abort(): void } {
    const old = this.current();
    const files: StagedFile[] = [];
    // The same YAML again (its files renewed in place) does not push the config before it out of
    // `previous`: rollback still goes back to a different config.
    const sameText = old !== null && old.sha256 === record.sha256 && old.baseDir === record.baseDir;
    try {
      if (old && !sameText) files.push(...this.stageRecord('previous', old));
      files.push(...this.stageRecord('current', record));
    } catch (e) {
      for (const f of files) f.abort();
      throw e;
    }
    return {
      // previous first: a crash in between leaves the old current, still valid.
      commit: () => {
        for (const f of files) f.commit();
      },
      abort: () => {
        for (const f of files) f.abort();
      },
    };
  }

  private stageRecord(name: string, r: AppliedRecord): StagedFile[] {
    const { yaml, ...meta } = r;
    return [
      stageFile(join(this.dir, `${name}.yaml`), yaml, 0o640),
      stageFile(join(this.dir, `${name}.json`), `${JSON.stringify(meta, null, 2)}\n`, 0o640),
    ];
  }

  private read(name: string): AppliedRecord | null {
    try {
      const meta = JSON.parse(readFileSync(join(this.dir, `${name}.json`), 'utf8')) as Meta;
      const yaml = readFileSync(join(this.dir, `${name}.yaml`), 'utf8');
      // A torn pair (crash between the two renames) is detected by the hash.
      if (sha256(yaml) !== meta.sha256) return null;
      return { ...meta, yaml };
    } catch {
      return null;
    }
  }
}
