/**
 * The Node.js flags the daemons run with. `spooky run`, the e2e harness and the benchmark pass
 * them on the command line; the bins carry the same flags on their `#!` line (a test keeps the
 * two equal), so systemd units that exec the bins get them too.
 *
 * --max-semi-space-size=16: Node 24's V8 grows the young generation to 2 × 32 MiB under the data
 * plane's per-request allocation; 2 × 16 MiB (Node 20's size) costs no measurable CPU per request
 * and about 90 MiB less peak RSS (docs/performance.md, "Young-generation size").
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/** The `#!` line of a daemon's entry point that carries DAEMON_NODE_FLAGS. */
export const DAEMON_SHEBANG = `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`;
