/**
 * The applied config on disk under `control.state_dir/config/`: `current.yaml` + `current.json`
 * (version, sha256, when, by whom, the directory relative paths resolve against) and the same
 * for `previous`, which `rollback` re-applies. Every write is atomic (lib/atomic-file.ts), the
 * previous pair first, so a crash leaves either the old or the new state.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.js';

export interface AppliedRecord {
  version: number;
  sha256: string;
  appliedAt: string;
  appliedBy: string;
  /** Directory that relative file paths in the YAML resolve against. */
  baseDir: string;
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

  /** Makes `record` current; the old current becomes previous. */
  commit(record: AppliedRecord): void {
    const old = this.current();
    if (old) this.write('previous', old);
    this.write('current', record);
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

  private write(name: string, r: AppliedRecord): void {
    const { yaml, ...meta } = r;
    writeFileAtomic(join(this.dir, `${name}.yaml`), yaml, 0o640);
    writeFileAtomic(join(this.dir, `${name}.json`), `${JSON.stringify(meta, null, 2)}\n`, 0o640);
  }
}
