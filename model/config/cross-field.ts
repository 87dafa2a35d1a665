// Rules that span several objects (config.md "Cross-field rules"). They run even when other
// fields failed, so the input is read defensively: anything malformed is skipped here because
// the field schemas already report it.

import { analyseBackendAddress, routeHostKey, routeHostProblem } from './address.js';

export type ReportIssue = (path: (string | number)[], message: string) => void;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

export function checkCrossFieldRules(config: unknown, report: ReportIssue): void {
  if (!isRecord(config) || !isRecord(config.upstream)) return;
  const idOwners = new Map<string, string>();
  const routeOwners = new Map<string, string>();

  for (const [poolName, pool] of Object.entries(config.upstream)) {
    if (!isRecord(pool)) continue;

    if (Array.isArray(pool.backends)) {
      const originOwners = new Map<string, string>();
      pool.backends.forEach((backend: unknown, index) => {
        if (!isRecord(backend)) return;
        const here = ['upstream', poolName, 'backends', index];
        if (typeof backend.id === 'string') {
          const first = idOwners.get(backend.id);
          if (first !== undefined) {
            report([...here, 'id'], `duplicate backend id ${JSON.stringify(backend.id)}, already used at ${first}`);
          } else {
            idOwners.set(backend.id, formatPath(here));
          }
        }
        if (typeof backend.address === 'string') {
          const parsed = analyseBackendAddress(backend.address);
          if (typeof parsed === 'string') return;
          const first = originOwners.get(parsed.origin);
          if (first !== undefined) {
            report(
              [...here, 'address'],
              `backend origin ${parsed.origin} appears twice in pool ${poolName}, already used at ${first}`,
            );
          } else {
            originOwners.set(parsed.origin, formatPath(here));
          }
        }
      });
    }

    // Without a route the pool gets path_prefix '/' and no host (the schema's default).
    const route = pool.route === undefined ? {} : pool.route;
    if (!isRecord(route)) continue;
    const host = route.host;
    const prefix = route.path_prefix === undefined ? '/' : route.path_prefix;
    if (typeof prefix !== 'string') continue;
    if (host !== undefined && (typeof host !== 'string' || routeHostProblem(host) !== undefined)) continue;
    const key = `${routeHostKey(host)} ${prefix}`;
    const first = routeOwners.get(key);
    if (first !== undefined) {
      const hostText = host === undefined ? 'any host' : `host ${JSON.stringify(host)}`;
      const what = `(${hostText}, path_prefix ${JSON.stringify(prefix)})`;
      report(['upstream', poolName, 'route'], `route ${what} is identical to the route of pool ${first}`);
    } else {
      routeOwners.set(key, poolName);
    }
  }

  const brownout = isRecord(config.resilience) ? config.resilience.brownout : undefined;
  if (isRecord(brownout) && Array.isArray(brownout.core_routes)) {
    const pools = config.upstream;
    brownout.core_routes.forEach((name: unknown, index) => {
      if (typeof name === 'string' && name !== '' && !Object.hasOwn(pools, name)) {
        const known = Object.keys(pools).join(', ');
        report(
          ['resilience', 'brownout', 'core_routes', index],
          `unknown pool ${JSON.stringify(name)} (pools: ${known})`,
        );
      }
    });
  }
}

/**
 * Names the schema cannot hold: zod drops a `__proto__` key from a map (assigning it to a plain
 * object would replace the object's prototype), so a pool of that name would vanish without a
 * word. Reported from the raw YAML data, where the key still exists.
 */
export function checkReservedNames(raw: unknown, report: ReportIssue): void {
  if (!isRecord(raw) || !isRecord(raw.upstream)) return;
  if (Object.hasOwn(raw.upstream, '__proto__')) {
    report(
      ['upstream', '__proto__'],
      'pool name "__proto__" is not allowed: a pool name starts with a letter or digit (and this one, the prototype key of JavaScript objects, would make the pool vanish); choose another name',
    );
  }
}
