// Who a request really comes from. Behind Caddy or a load balancer the socket's
// peer is the proxy; its X-Forwarded-For / X-Forwarded-Proto say who the client
// is and which scheme it used. Those headers are believed only from the peers
// listed in TENANTRY_TRUSTED_PROXIES (parsed once, at load, into a BlockList);
// from anyone else they are ignored, so a client cannot choose its own address
// (for the wrong-token throttle, the connection caps or the access log).
import net from 'node:net';
import type { IncomingMessage } from 'node:http';

export interface ClientOrigin {
  /** The client's address: the socket's peer, or what a trusted proxy says. */
  readonly address: string;
  /** The scheme the client used. */
  readonly secure: boolean;
  /** Whether the socket's peer is a trusted proxy. */
  readonly viaProxy: boolean;
}

/** Parses `10.0.0.1, 192.168.0.0/16, ::1` into a BlockList; throws with the bad entry. */
export function parseTrustedProxies(text: string): TrustedProxies {
  const list = new net.BlockList();
  const entries = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const [addr, bits, ...rest] = entry.split('/');
    const family = net.isIP(addr ?? '');
    if (family === 0 || rest.length > 0) throw new Error(`"${entry}" is not an address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(addr!, type);
      continue;
    }
    const prefix = Number(bits);
    if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new Error(`"${entry}" has a bad prefix length`);
    list.addSubnet(addr!, prefix, type);
  }
  return new TrustedProxies(list, entries);
}

/** Socket peers like "::ffff:127.0.0.1" are IPv4 addresses carried over IPv6. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export class TrustedProxies {
  constructor(
    private readonly list: net.BlockList | undefined,
    /** As configured, for display. */
    readonly entries: readonly string[],
  ) {}

  static none(): TrustedProxies {
    return new TrustedProxies(undefined, []);
  }

  get any(): boolean {
    return this.entries.length > 0;
  }

  trusts(address: string | undefined): boolean {
    if (!this.list || !address) return false;
    const a = plainAddress(address);
    const family = net.isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The request's origin. From a trusted peer, the client is the right-most
   * X-Forwarded-For entry that is not itself a trusted proxy (entries further
   * left were written by whoever sent them, so are not believed).
   */
  originOf(req: IncomingMessage): ClientOrigin {
    const peer = req.socket.remoteAddress ?? '';
    const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
    if (!this.trusts(peer)) return { address: plainAddress(peer), secure: encrypted, viaProxy: false };
    let address = plainAddress(peer);
    const xff = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').map((s) => s.trim()).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = plainAddress(hops[i]!.replace(/^\[(.*)\](:\d+)?$/, '$1'));
      if (net.isIP(hop) === 0) break;
      address = hop;
      if (!this.trusts(hop)) break;
    }
    const proto = req.headers['x-forwarded-proto'];
    const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
    const secure = first === 'https' ? true : first === 'http' ? false : encrypted;
    return { address, secure, viaProxy: true };
  }
}
