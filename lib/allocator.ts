/**
 * The data plane's C allocator (issue #16, docs/performance.md "The C allocator").
 *
 * Node's UDP socket allocates 64 KiB for every datagram it receives and shrinks the block to
 * the datagram's size; quiche and BoringSSL allocate per packet too. glibc's malloc handles that
 * pattern badly (splitting, coalescing and consolidating free chunks: about a sixth of the data
 * plane's CPU under uploads), jemalloc's size classes do not. jemalloc can only be chosen before
 * the process starts (LD_PRELOAD), so the data plane's entry point replaces itself once, with
 * the same pid, arguments and flags, through `process.execve` before it loads anything else.
 *
 * SPOOKY_ALLOCATOR picks: `auto` (the default: jemalloc when Debian's libjemalloc2 or the
 * distribution's equivalent is installed, else glibc), `jemalloc` (refuse to start without it),
 * `system` (glibc's malloc, no re-exec). An operator's own LD_PRELOAD is left as it is.
 */
import { existsSync, readFileSync } from 'node:fs';

export const ALLOCATOR_ENV = 'SPOOKY_ALLOCATOR';
/** Set on the replaced process (and inherited by workers): the choice is made once. */
export const ALLOCATOR_DONE_ENV = 'SPOOKY_ALLOCATOR_CHOSEN';

/** Where distributions install jemalloc's shared library (Debian/Ubuntu, Fedora/RHEL, Alpine/Arch). */
export const JEMALLOC_PATHS: readonly string[] = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
];

/** The first of JEMALLOC_PATHS that exists. */
export function findJemalloc(exists: (path: string) => boolean): string | undefined {
  return JEMALLOC_PATHS.find((p) => exists(p));
}

export type AllocatorChoice = 'auto' | 'jemalloc' | 'system';

export type AllocatorPlan =
  /** Replace this process with `env` (LD_PRELOAD set). */
  | { action: 'exec'; env: NodeJS.ProcessEnv }
  /** Run as is; `reason` says why when it matters to an operator. */
  | { action: 'run'; reason?: string }
  /** Refuse to start. */
  | { action: 'fail'; message: string };

/** What planAllocator needs to know about the host and this process. */
export interface AllocatorHost {
  /** Which candidate files are present. */
  exists: (path: string) => boolean;
  /** This process already runs on jemalloc (/etc/ld.so.preload, say). */
  onJemalloc: boolean;
  /**
   * The kernel started this process in secure-execution mode (a binary with a file capability,
   * as in the container image): the dynamic loader ignores LD_PRELOAD paths there.
   */
  secureExec: boolean;
}

/**
 * jemalloc's settings unless the operator gives MALLOC_CONF: two arenas (the event-loop thread
 * allocates nearly everything) and dirty pages returned after 1 s instead of 10 s. Against the
 * defaults that kept the peak RSS at glibc's (docs/performance.md, "The C allocator").
 */
export const JEMALLOC_CONF = 'narenas:2,dirty_decay_ms:1000';

/** What the entry point does about the allocator (pure: the host comes in as facts). */
export function planAllocator(env: NodeJS.ProcessEnv, host: AllocatorHost): AllocatorPlan {
  const raw = env[ALLOCATOR_ENV] ?? 'auto';
  if (raw !== 'auto' && raw !== 'jemalloc' && raw !== 'system') {
    return { action: 'fail', message: `${ALLOCATOR_ENV}=${raw}: expected auto, jemalloc or system` };
  }
  const choice: AllocatorChoice = raw;
  if (host.onJemalloc) {
    return choice === 'system'
      ? {
          action: 'run',
          reason:
            'jemalloc is loaded before the data plane starts (/etc/ld.so.preload or LD_PRELOAD), which it cannot undo',
        }
      : { action: 'run' };
  }
  if (choice === 'system') return { action: 'run' };
  const refuse = (why: string): AllocatorPlan =>
    choice === 'jemalloc'
      ? { action: 'fail', message: `${ALLOCATOR_ENV}=jemalloc, but ${why}` }
      : { action: 'run', reason: why };
  // Replaced once already, and the loader did not take jemalloc: never loop.
  if (env[ALLOCATOR_DONE_ENV] !== undefined) return refuse('the dynamic loader did not load it');
  if (env.LD_PRELOAD) return refuse("LD_PRELOAD is set (the operator's own preload is left as it is)");
  if (host.secureExec) return refuse('the process runs in secure-execution mode, where LD_PRELOAD is ignored');
  const lib = findJemalloc(host.exists);
  if (lib === undefined) {
    return refuse(`libjemalloc.so.2 is not installed (Debian: apt-get install libjemalloc2)`);
  }
  return {
    action: 'exec',
    env: { MALLOC_CONF: JEMALLOC_CONF, ...env, LD_PRELOAD: lib, [ALLOCATOR_DONE_ENV]: lib },
  };
}

/**
 * The start-up warning when `auto` ends on glibc's malloc (what the operator loses, how to fix or
 * silence it) or `system` cannot be had; null otherwise.
 */
export function allocatorWarning(
  env: NodeJS.ProcessEnv,
  host: AllocatorHost,
  platform: NodeJS.Platform = process.platform,
): string | null {
  if (platform !== 'linux') return null; // chooseAllocator does nothing elsewhere
  const plan = planAllocator(env, host);
  if (plan.action !== 'run' || plan.reason === undefined) return null;
  if (host.onJemalloc) return `running on jemalloc although ${ALLOCATOR_ENV}=system: ${plan.reason}`;
  return `running on glibc's malloc, not jemalloc: ${plan.reason}. jemalloc takes up to 13 % less CPU per upload (docs/performance.md); set ${ALLOCATOR_ENV}=system to keep glibc without this warning`;
}

/** Which allocator a process runs on, from its memory map (`/proc/PID/maps`). */
export function allocatorInUse(maps: string): 'jemalloc' | 'glibc' {
  return /\/libjemalloc\.so[.\d]*$/m.test(maps) ? 'jemalloc' : 'glibc';
}

const AT_SECURE = 23n;

/** AT_SECURE from an ELF auxiliary vector (`/proc/self/auxv`: 64-bit little-endian pairs). */
export function secureExecution(auxv: Buffer): boolean {
  for (let i = 0; i + 16 <= auxv.length; i += 16) {
    const type = auxv.readBigUInt64LE(i);
    if (type === 0n) break;
    if (type === AT_SECURE) return auxv.readBigUInt64LE(i + 8) !== 0n;
  }
  return false;
}

function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

export function currentAllocator(): 'jemalloc' | 'glibc' {
  return allocatorInUse(readOr(() => readFileSync('/proc/self/maps', 'utf8'), ''));
}

/** This process's facts for planAllocator. */
export function allocatorHost(): AllocatorHost {
  return {
    exists: existsSync,
    onJemalloc: currentAllocator() === 'jemalloc',
    secureExec: secureExecution(readOr(() => readFileSync('/proc/self/auxv'), Buffer.alloc(0))),
  };
}

/**
 * Carries out planAllocator for this process: returns (running on the allocator it has) or
 * replaces the process and never returns. Call it before the daemon loads anything else.
 */
export function chooseAllocator(name: string): void {
  if (process.platform !== 'linux') return;
  const plan = planAllocator(process.env, allocatorHost());
  if (plan.action === 'fail') {
    process.stderr.write(`${name}: ${plan.message}\n`);
    process.exit(2);
  }
  if (plan.action !== 'exec' || process.execve === undefined) return;
  // Node aborts when execve fails (a seccomp filter without execve, say): SPOOKY_ALLOCATOR=system
  // is the way out, and the error names the call.
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], plan.env);
}
