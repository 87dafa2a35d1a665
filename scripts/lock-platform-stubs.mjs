#!/usr/bin/env node
// The npm registry reachable here lacks some platform builds that our dependencies list as
// optional (e.g. @matrixai/quic 2.0.9 names darwin/win32 packages that were never published at
// that version). npm then leaves them out of package-lock.json, and `npm ci` refuses the lock
// ("Missing: … from lock file"). This adds a stub entry, with the os/cpu/libc the name says, for
// each such optional dependency, so that `npm ci` skips it on other platforms as npm intends.
// Run after `npm install` changes the lock.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const OS = ['android', 'darwin', 'linux', 'win32', 'freebsd', 'openbsd', 'sunos', 'aix'];
const CPU = { x64: ['x64'], arm64: ['arm64'], ia32: ['ia32'], arm: ['arm'], universal: ['x64', 'arm64'] };

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpuKey = parts.find((p) => p in CPU);
  if (!os || !cpuKey) return null;
  return { os: [os], cpu: CPU[cpuKey], ...(parts.includes('musl') ? { libc: ['musl'] } : {}) };
}

let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [dep, range] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key] || lock.packages[`${path}/${key}`]) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    lock.packages[key] = { version: range, ...(pkg.dev ? { dev: true } : {}), optional: true, ...platform };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
lock.packages = sorted;
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform stub(s) added`);
