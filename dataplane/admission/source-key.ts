// The key per-source connection limits count under. An IPv4 client has one address; an IPv6
// client gets a whole /64 from its provider (RFC 6177) and can pick any address in it, so IPv6
// sources are counted by /64 prefix. IPv4-mapped IPv6 (`::ffff:192.0.2.1`, a dual-stack socket)
// counts as the IPv4 address, so a client is one source over QUIC and TCP alike.

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** The eight 16-bit groups of an IPv6 literal (zone and embedded IPv4 allowed), or null. */
function ipv6Groups(address: string): number[] | null {
  const zone = address.indexOf('%');
  let text = zone === -1 ? address : address.slice(0, zone);
  if (text.includes('.')) {
    // A trailing dotted quad stands for the last two groups: rewrite it as them.
    const colon = text.lastIndexOf(':');
    const quad = text.slice(colon + 1).split('.');
    if (quad.length !== 4 || !quad.every((q) => /^\d{1,3}$/.test(q) && Number(q) <= 255)) return null;
    const [a, b, c, d] = quad.map(Number);
    text = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const gap = text.indexOf('::');
  if (gap === -1) {
    const groups = parse(text);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  if (text.indexOf('::', gap + 1) !== -1) return null;
  const head = parse(text.slice(0, gap));
  const rest = parse(text.slice(gap + 2));
  if (head === null || rest === null) return null;
  const missing = 8 - head.length - rest.length;
  if (missing < 1) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...rest];
}

/**
 * `192.0.2.1` → `192.0.2.1`; `2001:db8:a:b:1:2:3:4` → `2001:db8:a:b::/64`; `::ffff:192.0.2.1` →
 * `192.0.2.1`. Anything unparsable is its own key (it can only have come from the socket layer).
 */
export function sourceKey(address: string): string {
  const mapped = MAPPED_V4.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  const groups = ipv6Groups(address);
  if (groups === null) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}
