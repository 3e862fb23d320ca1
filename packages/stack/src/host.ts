import { listInterfaces } from '#platform';

/** Whether an address is a wildcard bind (`0.0.0.0`, `::`). */
export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '::0';
}

/**
 * The host to write in Via sent-by and Contact for a transport bound to a wildcard
 * address: the first address of a non-internal interface of that family, else the
 * loopback address. A transport's `advertised` setting takes precedence over this.
 */
export function hostForWildcard(family: 'IPv4' | 'IPv6'): string {
  const all = listInterfaces?.() ?? {};
  for (const list of Object.values(all)) {
    for (const a of list ?? []) {
      const f = a.family === 4 ? 'IPv4' : a.family === 6 ? 'IPv6' : a.family;
      if (!a.internal && f === family && !(family === 'IPv6' && a.address.startsWith('fe80')))
        return a.address;
    }
  }
  return family === 'IPv6' ? '::1' : '127.0.0.1';
}

/** The host of a transport's address as Via sent-by and URIs write it (IPv6 in brackets). */
export function sentByHost(address: string, family: 'IPv4' | 'IPv6'): string {
  const a = isWildcard(address) ? hostForWildcard(family) : address;
  return family === 'IPv6' ? `[${a}]` : a;
}
