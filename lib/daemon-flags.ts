/**
 * The Node.js flags the daemons run with. `spooky run`, the e2e harness and the benchmark pass
 * them on the command line; the bins carry the same flags on their `#!` line (a test keeps the
 * two equal), so systemd units that exec the bins get them too.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = [];
