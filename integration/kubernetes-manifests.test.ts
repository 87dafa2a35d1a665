// The Kubernetes base (deploy/kubernetes/) and the container image (Dockerfile), checked without a
// cluster or a container runtime: kustomization.yaml lists every manifest; every document passes
// the Kubernetes schemas (kubernetes-models); the two Spooky configs of the ConfigMap pass
// Spooky's own validator; each file a config names lies in a volume of the container that reads
// it; and the pieces that must agree do (ports, probes, Service, image user, bins, Node flags).

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { Secret } from 'kubernetes-models/v1/Secret';
import { type IService, Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { parse, parseAllDocuments } from 'yaml';
import { JEMALLOC_CONF } from '../lib/allocator.js';
import { DAEMON_NODE_FLAGS, DAEMON_SHEBANG } from '../lib/daemon-flags.js';
import { loadConfigText } from '../model/config/load.js';
import type { Config } from '../model/config/schema.js';

/** The repository root: the first directory above this file (source or dist/) with the base in it. */
function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'deploy', 'kubernetes', 'kustomization.yaml'))) return dir;
    if (dirname(dir) === dir) throw new Error('deploy/kubernetes/kustomization.yaml not found above this test');
  }
}

const root = repoRoot();
const base = join(root, 'deploy', 'kubernetes');
const read = (...parts: string[]) => readFileSync(join(root, ...parts), 'utf8');

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

interface Validatable {
  validate(): void;
}

/** The kinds the base may use, each with its schema; anything else is refused. */
const MODELS: Record<string, new (data?: never) => Validatable> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
};
const CLUSTER_SCOPED = new Set(['v1/Namespace']);

/** Throws when `doc` is no known kind or breaks its Kubernetes schema. */
function validateManifest(doc: { apiVersion?: unknown; kind?: unknown }): void {
  const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
  const Model = MODELS[key];
  if (Model === undefined) throw new Error(`unknown kind ${key}: add its schema to MODELS or leave it out of the base`);
  new Model(doc as never).validate();
}

const kustomization = parse(read('deploy', 'kubernetes', 'kustomization.yaml')) as {
  apiVersion: string;
  kind: string;
  namespace: string;
  resources: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
};

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of kustomization.resources) {
    for (const doc of parseAllDocuments(read('deploy', 'kubernetes', file))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      const value = doc.toJS() as Manifest | null;
      if (value !== null) out.push({ ...value, file });
    }
  }
  return out;
}
const manifests = loadManifests();

function find<T>(apiVersion: string, kind: string, name: string): T {
  const found = manifests.filter((m) => m.apiVersion === apiVersion && m.kind === kind && m.metadata.name === name);
  assert.equal(found.length, 1, `one ${kind} ${name} in the base`);
  return found[0] as unknown as T;
}

const configMap = find<IConfigMap>('v1', 'ConfigMap', 'spooky-config');
const daemonSet = find<IDaemonSet>('apps/v1', 'DaemonSet', 'spooky-dataplane');
const deployment = find<IDeployment>('apps/v1', 'Deployment', 'spooky-control');
const controlService = find<IService>('v1', 'Service', 'spooky-control');
const apiService = find<IService>('v1', 'Service', 'spooky-control-api');
const packageJson = JSON.parse(read('package.json')) as { bin: Record<string, string> };

function podSpec(workload: IDaemonSet | IDeployment): IPodSpec {
  const spec = workload.spec?.template.spec;
  assert.ok(spec, `${workload.metadata?.name}: a pod template`);
  return spec;
}
function onlyContainer(workload: IDaemonSet | IDeployment): IContainer {
  const { containers } = podSpec(workload);
  assert.equal(containers.length, 1, `${workload.metadata?.name}: one container`);
  return containers[0];
}

/** The Spooky config a container runs (`--config FILE`, FILE from the spooky-config ConfigMap). */
function configOf(workload: IDaemonSet | IDeployment): { key: string; config: Config } {
  const container = onlyContainer(workload);
  const args = container.args ?? [];
  const file = args[args.indexOf('--config') + 1];
  assert.ok(args.includes('--config') && file, `${container.name}: --config FILE`);
  const mount = container.volumeMounts?.find((m) => m.mountPath === posix.dirname(file));
  const volume = podSpec(workload).volumes?.find((v) => v.name === mount?.name);
  assert.ok(volume?.configMap, `${file} comes from a ConfigMap`);
  assert.equal(volume.configMap.name, 'spooky-config', `${file} comes from the spooky-config ConfigMap`);
  const key = volume.configMap.items?.find((i) => i.path === posix.basename(file))?.key ?? posix.basename(file);
  const text = configMap.data?.[key];
  assert.ok(text !== undefined, `spooky-config has the key ${key}`);
  const loaded = loadConfigText(text, `spooky-config/${key}`);
  assert.ok(loaded.ok, `${key}: ${JSON.stringify(loaded.ok ? [] : loaded.errors, null, 1)}`);
  assert.deepEqual(loaded.warnings, [], `${key}: no warnings`);
  return { key, config: loaded.config };
}

/** Files a config reads, by their YAML path; only the sections that are on. */
function filesOf(config: Config): [string, string][] {
  const files: [string, string][] = [
    ['listen.tls.cert', config.listen.tls.cert],
    ['listen.tls.key', config.listen.tls.key],
  ];
  const add = (path: string, file: string | undefined) => file !== undefined && files.push([path, file]);
  if (config.listen.tls.client_auth.enabled)
    add('listen.tls.client_auth.ca_file', config.listen.tls.client_auth.ca_file);
  add('upstream_tls.ca_file', config.upstream_tls.ca_file);
  add('upstream_tls.client_cert', config.upstream_tls.client_cert);
  add('upstream_tls.client_key', config.upstream_tls.client_key);
  if (config.observability.control_api.enabled)
    add('observability.control_api.auth_token_file', config.observability.control_api.auth_token_file);
  const { listen, server } = config.control;
  if (listen.enabled && listen.tls) {
    add('control.listen.tls.cert', listen.tls.cert);
    add('control.listen.tls.key', listen.tls.key);
    add('control.listen.tls.client_ca', listen.tls.client_ca);
  }
  if (server.enabled && server.tls) {
    add('control.server.tls.ca', server.tls.ca);
    add('control.server.tls.cert', server.tls.cert);
    add('control.server.tls.key', server.tls.key);
  }
  return files;
}

/** The volume mounted at the longest mountPath that contains `path`, and that mount. */
function volumeAt(workload: IDaemonSet | IDeployment, path: string) {
  const mounts = (onlyContainer(workload).volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mount = mounts[0];
  const volume = podSpec(workload).volumes?.find((v) => v.name === mount?.name);
  return mount && volume ? { mount, volume } : undefined;
}

/** The file names a mounted volume holds, when the manifest says (undefined: cannot tell). */
function fileNames(volume: IVolume): string[] | undefined {
  const items = volume.secret?.items ?? volume.configMap?.items;
  if (items) return items.map((i) => i.path);
  if (volume.csi?.driver === 'csi.cert-manager.io') {
    const a = volume.csi.volumeAttributes ?? {};
    return [
      a['csi.cert-manager.io/certificate-file'] ?? 'tls.crt',
      a['csi.cert-manager.io/privatekey-file'] ?? 'tls.key',
      a['csi.cert-manager.io/ca-file'] ?? 'ca.crt',
    ];
  }
  return undefined;
}

const secretNames = (spec: IPodSpec) =>
  (spec.volumes ?? []).flatMap((v) => (v.secret?.secretName ? [v.secret.secretName] : []));

/** Both containers: the image's uid and gid 10001, nothing writable but their volumes. */
const LOCKED_DOWN = {
  runAsNonRoot: true,
  runAsUser: 10001,
  runAsGroup: 10001,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
};

test('kustomization.yaml lists every manifest of deploy/kubernetes/, and each listed one exists', () => {
  assert.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1');
  assert.equal(kustomization.kind, 'Kustomization');
  assert.equal(kustomization.namespace, 'spooky');
  const onDisk = readdirSync(base)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .filter((f) => f !== 'kustomization.yaml')
    .sort();
  assert.deepEqual([...kustomization.resources].sort(), onDisk);
  assert.equal(new Set(kustomization.resources).size, kustomization.resources.length, 'no resource listed twice');
});

test('every document passes the Kubernetes schema of its kind, in the spooky namespace', () => {
  assert.ok(manifests.length >= 8, `${manifests.length} documents`);
  const seen = new Set<string>();
  for (const m of manifests) {
    const key = `${m.apiVersion}/${m.kind}`;
    const { file: _file, ...doc } = m;
    assert.doesNotThrow(() => validateManifest(doc), `${m.file}: ${key} ${m.metadata?.name}`);
    if (CLUSTER_SCOPED.has(key)) assert.equal(m.metadata.namespace, undefined, `${m.file}: ${m.kind} has no namespace`);
    else assert.equal(m.metadata.namespace, kustomization.namespace, `${m.file}: ${m.kind} ${m.metadata.name}`);
    const id = `${key}/${m.metadata.name}`;
    assert.ok(!seen.has(id), `${id} defined once`);
    seen.add(id);
  }
  assert.ok(seen.has('v1/Namespace/spooky'));
});

test('the schema check is not vacuous: a bad value and an unknown kind are refused', () => {
  const bad = structuredClone(daemonSet);
  // Values the types forbid too: the casts stand for a hand-edited YAML file.
  (onlyContainer(bad) as { imagePullPolicy?: string }).imagePullPolicy = 'Sometimes';
  assert.throws(() => validateManifest(bad), /imagePullPolicy must be equal to one of the allowed values/);
  const port = structuredClone(daemonSet);
  (onlyContainer(port) as { ports?: unknown }).ports = [{ containerPort: 443, protocol: 'QUIC' }];
  assert.throws(() => validateManifest(port), /protocol must be equal to one of the allowed values/);
  assert.throws(
    () => validateManifest({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate' }),
    /unknown kind cert-manager.io\/v1\/Certificate/,
  );
});

test('the ConfigMap holds the two daemons configs, valid for Spooky, and a typo in them is caught', () => {
  assert.deepEqual(Object.keys(configMap.data ?? {}).sort(), ['control.yaml', 'dataplane.yaml']);
  const control = configOf(deployment);
  const dataplane = configOf(daemonSet);
  assert.equal(control.key, 'control.yaml');
  assert.equal(dataplane.key, 'dataplane.yaml');
  const typo = (configMap.data?.['dataplane.yaml'] ?? '').replace('server_name:', 'servr_name:');
  const loaded = loadConfigText(typo, 'dataplane.yaml');
  assert.ok(!loaded.ok);
  assert.match(loaded.errors.map((e) => e.message).join('\n'), /servr_name/);
});

test('every file a config names is in a volume of its container; state and socket directories are writable', () => {
  for (const workload of [deployment, daemonSet]) {
    const { key, config } = configOf(workload);
    for (const [path, file] of filesOf(config)) {
      const at = volumeAt(workload, file);
      assert.ok(at, `${key}: ${path} ${file} is in no volume`);
      const names = fileNames(at.volume);
      if (names) assert.ok(names.includes(posix.basename(file)), `${key}: ${path}: ${file} not in ${names}`);
    }
    for (const dir of [config.control.state_dir, posix.dirname(config.control.socket)]) {
      const at = volumeAt(workload, dir);
      assert.ok(at && !at.mount.readOnly, `${key}: ${dir} on a writable volume`);
      assert.ok(at.volume.emptyDir ?? at.volume.persistentVolumeClaim, `${key}: ${dir} on an emptyDir or a PVC`);
    }
  }
  // The control plane's applied configs outlive the pod.
  const state = volumeAt(deployment, configOf(deployment).config.control.state_dir);
  assert.equal(state?.volume.persistentVolumeClaim?.claimName, 'spooky-control-state');
  find('v1', 'PersistentVolumeClaim', 'spooky-control-state');
});

test('the data plane: hostNetwork DaemonSet on port 443, non-root with NET_BIND_SERVICE, TCP probes, drain time', () => {
  const { config } = configOf(daemonSet);
  const spec = podSpec(daemonSet);
  const c = onlyContainer(daemonSet);
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.deepEqual(c.command, ['spooky-dataplane']);
  const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol}`).sort();
  assert.deepEqual(ports, [`${config.listen.port}/TCP`, `${config.listen.port}/UDP`]);
  assert.equal(config.listen.tcp.enabled, true, 'the probes need the TCP listener');
  assert.equal(c.livenessProbe?.tcpSocket?.port, config.listen.port);
  assert.equal(c.readinessProbe?.tcpSocket?.port, config.listen.port);
  assert.deepEqual(c.securityContext, { ...LOCKED_DOWN, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } });
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  assert.ok(grace * 1000 > config.performance.shutdown_drain_timeout_ms + 2000, `grace ${grace} s above the drain`);
  // Its own certificate per pod (CN = node id), from the fleet CA Issuer, readable by its group.
  const csi = spec.volumes?.find((v) => v.csi)?.csi;
  assert.ok(csi);
  assert.equal(csi.driver, 'csi.cert-manager.io');
  assert.equal(csi.readOnly, true);
  const attrs = csi.volumeAttributes ?? {};
  assert.equal(attrs['csi.cert-manager.io/issuer-name'], 'spooky-fleet-ca');
  assert.equal(attrs['csi.cert-manager.io/issuer-kind'], 'Issuer');
  // The driver's own variable (expanded per pod), not a template literal.
  assert.equal(attrs['csi.cert-manager.io/common-name'], '$' + '{POD_NAME}');
  assert.match(attrs['csi.cert-manager.io/key-usages'] ?? '', /client auth/);
  assert.equal(attrs['csi.cert-manager.io/fs-group'], String(c.securityContext?.runAsGroup));
  // It dials the spooky-control Service.
  const server = config.control.server;
  assert.equal(server.enabled, true);
  assert.match(server.address ?? '', /^spooky-control\.spooky\.svc(\.|$)/);
  assert.equal(server.port, controlService.spec?.ports?.[0]?.port);
});

test('the control plane: one replica, Recreate, no capabilities, /health and /ready probes, scrape annotations', () => {
  const { config } = configOf(deployment);
  const spec = podSpec(deployment);
  const c = onlyContainer(deployment);
  assert.equal(deployment.spec?.replicas, 1);
  assert.equal(deployment.spec?.strategy?.type, 'Recreate');
  assert.deepEqual(c.command, ['spooky-control']);
  assert.deepEqual(c.securityContext, { ...LOCKED_DOWN, capabilities: { drop: ['ALL'] } });
  const portNamed = (name: unknown) => c.ports?.find((p) => p.name === name)?.containerPort;
  const api = config.observability.control_api;
  assert.ok(api.enabled && api.auth_token_file !== undefined);
  assert.equal(c.livenessProbe?.httpGet?.path, '/health');
  assert.equal(c.readinessProbe?.httpGet?.path, '/ready');
  assert.equal(portNamed(c.livenessProbe?.httpGet?.port), api.port);
  assert.equal(portNamed(c.readinessProbe?.httpGet?.port), api.port);
  const metrics = config.observability.metrics;
  assert.deepEqual(deployment.spec?.template.metadata?.annotations, {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': String(metrics.port),
    'prometheus.io/path': metrics.path,
  });
  assert.equal(config.control.listen.enabled, true);
  assert.equal(config.control.server.enabled, false);
  assert.equal(portNamed('fleet'), config.control.listen.port);
  assert.equal(spec.hostNetwork, undefined);
});

test('the Services select the control plane, reach its ports, and publish it while it is not ready', () => {
  const labels = deployment.spec?.template.metadata?.labels ?? {};
  const ports = onlyContainer(deployment).ports ?? [];
  for (const svc of [controlService, apiService]) {
    const name = svc.metadata?.name;
    assert.equal(svc.spec?.publishNotReadyAddresses, true, `${name}: /ready is 503 until a data plane serves`);
    for (const [k, v] of Object.entries(svc.spec?.selector ?? {})) assert.equal(labels[k], v, `${name}: ${k}`);
    for (const p of svc.spec?.ports ?? []) {
      const target = ports.find((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort);
      assert.equal(target?.containerPort, p.port, `${name}: port ${p.port}`);
    }
  }
  const { config } = configOf(deployment);
  assert.equal(controlService.spec?.ports?.[0]?.port, config.control.listen.port);
  const apiPorts = (apiService.spec?.ports ?? []).map((p) => p.port);
  assert.ok(apiPorts.includes(config.observability.control_api.port));
});

test('one image for both planes, named by the kustomization; the Secrets the base needs are documented', () => {
  const images = new Set([deployment, daemonSet].map((w) => onlyContainer(w).image));
  assert.equal(images.size, 1);
  const [image] = images;
  assert.equal(image?.split(':')[0], kustomization.images?.[0]?.name);
  for (const w of [deployment, daemonSet]) assert.ok((onlyContainer(w).command?.[0] ?? '') in packageJson.bin);
  // Keys are never committed: each Secret a pod mounts is created by the operator, as README.md says.
  const readme = read('deploy', 'kubernetes', 'README.md');
  const shipped = new Set(manifests.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name));
  const used = new Set([...secretNames(podSpec(deployment)), ...secretNames(podSpec(daemonSet))]);
  for (const name of used) {
    if (shipped.has(name)) continue;
    assert.match(readme, new RegExp(`create secret (generic|tls) ${name} `), `README.md: how to create ${name}`);
  }
});

test("README.md's node setup asks for the sysctls of deploy/sysctl.d/99-spooky.conf", () => {
  const settings = read('deploy', 'sysctl.d', '99-spooky.conf')
    .split('\n')
    .filter((l) => /^net\./.test(l));
  assert.ok(settings.length >= 2);
  const readme = read('deploy', 'kubernetes', 'README.md');
  for (const line of settings) assert.ok(readme.includes(line), `README.md: ${line}`);
});

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerfile(): string[] {
  return read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

test('Dockerfile: COPY sources exist and pass .dockerignore, tsconfig is fully copied, bins and user match', () => {
  const lines = dockerfile();
  const ignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(ignore[0], '*', '.dockerignore lets through only what it names');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  const copied: string[] = [];
  for (const line of lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
    const sources = line.split(/\s+/).slice(1, -1);
    for (const src of sources.map((s) => s.replace(/\/$/, ''))) {
      assert.ok(existsSync(join(root, src)), `Dockerfile: COPY ${src}: no such path`);
      assert.ok(
        allowed.some((a) => src === a || src.startsWith(`${a}/`)),
        `Dockerfile: COPY ${src} is excluded by .dockerignore`,
      );
      copied.push(src);
    }
  }
  const tsconfig = JSON.parse(read('tsconfig.json')) as { include: string[] };
  for (const dir of tsconfig.include) assert.ok(copied.includes(dir), `Dockerfile: the build stage copies ${dir}/`);
  // The installs (with the optional npm_ca secret mounted): scripts off, production-only at run time.
  // The npm_ca secret is optional (no `required`): a build without it must still run.
  const install = (flags: string) =>
    lines.find((l) => l.startsWith('RUN --mount=type=secret,id=npm_ca ') && l.includes(`npm ci ${flags}`));
  for (const flags of ['--ignore-scripts', '--omit=dev --ignore-scripts']) {
    const line = install(flags);
    assert.ok(line, `Dockerfile: RUN --mount=type=secret,id=npm_ca … npm ci ${flags}`);
    assert.doesNotMatch(line, /required/);
    assert.match(line, /NODE_EXTRA_CA_CERTS=\/run\/secrets\/npm_ca/);
  }
  assert.ok(lines.some((l) => /^RUN npm run build\b/.test(l)));

  // The three bins: links to package.json's "bin" files.
  const run = lines.filter((l) => l.startsWith('RUN ')).join(' ');
  for (const [name, file] of Object.entries(packageJson.bin)) {
    assert.ok(run.includes(`ln -s /opt/spooky/${file} /usr/local/bin/${name};`), `Dockerfile: link for ${name}`);
  }
  // The data plane's #! line names the capable node instead of env, keeping the daemons' flags: the
  // kernel passes what follows the interpreter as one argument, so this works for one flag only.
  const setcap = /setcap cap_net_bind_service=\+ep (\S+);/.exec(run);
  assert.ok(setcap, 'Dockerfile: setcap on a copy of node');
  const envPrefix = '#!/usr/bin/env -S node ';
  assert.ok(DAEMON_SHEBANG.startsWith(envPrefix) && DAEMON_NODE_FLAGS.length === 1, DAEMON_SHEBANG);
  const sed = `sed -i '1s|^${envPrefix}|#!${setcap[1]} |' /opt/spooky/${packageJson.bin['spooky-dataplane']};`;
  assert.ok(run.includes(sed), `Dockerfile: ${sed}`);
  const built = read('dataplane', 'main.ts').split('\n')[0];
  assert.equal(built, DAEMON_SHEBANG, "dataplane/main.ts's #! line is the one the Dockerfile rewrites");

  // jemalloc for every process of the image, with the settings the data plane would give it.
  assert.ok(run.includes('> /etc/ld.so.preload;'), 'Dockerfile: jemalloc in /etc/ld.so.preload');
  assert.ok(
    run.includes(`ln -s ${JEMALLOC_CONF} /etc/malloc.conf;`),
    `Dockerfile: /etc/malloc.conf -> ${JEMALLOC_CONF}`,
  );

  // The user the manifests run as.
  const user = lines.filter((l) => l.startsWith('USER ')).at(-1);
  for (const w of [deployment, daemonSet]) {
    const sc = onlyContainer(w).securityContext;
    assert.equal(user, `USER ${sc?.runAsUser}:${sc?.runAsGroup}`);
  }
});
