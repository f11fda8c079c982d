// DNS look-ups for domain proof: TXT records, and the addresses the HTTP proof
// is fetched from. Through TENANTRY_DNS_SERVERS when set (Resolver.setServers),
// so tests and private set-ups use a DNS server of their own; else the system's.
import dns from 'node:dns';

export interface DnsLookup {
  /** TXT records at `name`, each joined from its chunks. */
  txt(name: string): Promise<string[]>;
  /** IPv4 (then IPv6) addresses of `name`. */
  addresses(name: string): Promise<string[]>;
}

const TIMEOUT_MS = 3000;

export function createDnsLookup(servers: readonly string[] | undefined): DnsLookup {
  const resolver = new dns.promises.Resolver({ timeout: TIMEOUT_MS, tries: 2 });
  if (servers) resolver.setServers([...servers]);
  return {
    txt: async (name) => (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')),
    addresses: async (name) => {
      if (!servers) return (await dns.promises.lookup(name, { all: true })).map((a) => a.address);
      const v4 = await resolver.resolve4(name).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENODATA' || err.code === 'ENOTFOUND') return [] as string[];
        throw err;
      });
      return v4.length ? v4 : await resolver.resolve6(name);
    },
  };
}
