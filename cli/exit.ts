/**
 * Ends a CLI command with `code` once stdout and stderr have handed everything to the OS.
 * process.exit() right after a large write drops what a pipe has not taken yet
 * (`spooky backends --json | jq` would read 64 KiB and then a cut document); a write callback
 * runs only after everything queued before it was written.
 */
export function exitAfterOutput(code: number): Promise<never> {
  process.exitCode = code;
  return new Promise<never>(() => {
    let pending = 2;
    const flushed = () => {
      if (--pending === 0) process.exit(code);
    };
    process.stdout.write('', flushed);
    process.stderr.write('', flushed);
  });
}
