// Host names: custom domain names as users type them (normalised: lower case,
// no trailing dot, IDN as punycode through node:url's domainToASCII; LDH
// labels, at least two of them), the names a tenant may not claim, and the
// Host header of a request.
import net from 'node:net';
import { domainToASCII } from 'node:url';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower case, punycode, no trailing dot; undefined when it is not a valid host name. */
export function normalizeDomain(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const trimmed = input.trim().replace(/\.$/, '');
  if (trimmed === '' || trimmed.length > 253 * 4) return undefined;
  // domainToASCII lower-cases and maps IDN labels to xn--; it answers '' for what is no domain at all.
  const d = domainToASCII(trimmed);
  if (d.length < 1 || d.length > 253 || net.isIP(d) !== 0) return undefined;
  const labels = d.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  return d;
}

export type DomainCheck =
  | { readonly ok: true; readonly domain: string; readonly wildcard: boolean }
  | { readonly ok: false; readonly reason: 'invalid' | 'reserved'; readonly message: string };

export interface ReservedNames {
  /** The platform host (API, git, dashboard). */
  readonly platformHost: string;
  /** Every name under it belongs to a tenant id. */
  readonly baseDomain: string;
}

/**
 * A domain a tenant asks for: normalised, and refused when it is not a host
 * name, when it is the platform host, or when it is the base domain or under
 * it (those names are tenant ids). `*.name` is a wildcard (at least two labels after it).
 */
export function checkDomainClaim(input: unknown, reserved: ReservedNames): DomainCheck {
  const raw = typeof input === 'string' ? input.trim() : undefined;
  const wildcard = raw !== undefined && raw.startsWith('*.');
  const domain = normalizeDomain(wildcard ? raw!.slice(2) : raw);
  if (!domain) {
    return { ok: false, reason: 'invalid', message: `"${String(input)}" is not a valid domain name (letters, digits and dashes in at least two dot-separated labels).` };
  }
  const name = wildcard ? `*.${domain}` : domain;
  if (domain === reserved.platformHost) {
    return { ok: false, reason: 'reserved', message: `${name} is the platform's own host name.` };
  }
  if (domain === reserved.baseDomain || isUnder(domain, reserved.baseDomain)) {
    return { ok: false, reason: 'reserved', message: `${name} is under the base domain ${reserved.baseDomain}, whose names belong to tenant ids.` };
  }
  if (wildcard && isUnder(reserved.platformHost, domain)) {
    return { ok: false, reason: 'reserved', message: `${name} would cover the platform's own host name.` };
  }
  return { ok: true, domain: name, wildcard };
}

function isUnder(name: string, parent: string): boolean {
  return name.endsWith('.' + parent);
}

/** The wildcard entry that would cover `host` (`a.shop.example` -> `*.shop.example`), if it has a parent with two labels. */
export function wildcardFor(host: string): string | undefined {
  const dot = host.indexOf('.');
  if (dot < 0) return undefined;
  const parent = host.slice(dot + 1);
  return parent.includes('.') ? `*.${parent}` : undefined;
}

/** Host header -> lowercase name without port or trailing dot; '' when absent or malformed. */
export function normalizeHost(header: string | undefined): string {
  if (!header) return '';
  let h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : '';
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}
