// Cookies a tenant's code sets are kept to the tenant's own host name. Tenants
// often share a parent domain with each other and with the platform host
// (acme.example.com, shop.example.com, example.com): a `Domain=example.com`
// cookie from one tenant would reach all of them (session fixation, CSRF
// cookie overrides, or enough bytes to get every victim a 431). A Domain
// attribute other than the request's own host is removed, which leaves a
// host-only cookie: the tenant's site keeps working, nobody else sees it.

const DOMAIN_ATTRIBUTE = /;\s*domain\s*=\s*([^;]*)/gi;

/** The Set-Cookie value with any Domain attribute that is not exactly `host` removed. */
export function scopeSetCookie(value: string, host: string): string {
  if (!/domain/i.test(value)) return value;
  return value.replace(DOMAIN_ATTRIBUTE, (attr, domain: string) => {
    const d = domain.trim().toLowerCase().replace(/^\./, '');
    return d === host ? attr : '';
  });
}
