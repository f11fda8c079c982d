// Security headers sent with every static response, as fixed strings. This is
// helmet's set minus what would break arbitrary tenant sites:
//   Content-Security-Policy (inline scripts, CDNs), Cross-Origin-Resource-Policy
//   (images/fonts used by other sites), Cross-Origin-Opener-Policy (OAuth popups).
// A site adds or replaces any of them with `_headers`.

export const SECURITY_HEADERS: readonly (readonly [string, string])[] = Object.freeze([
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'SAMEORIGIN'],
  ['Referrer-Policy', 'strict-origin-when-cross-origin'],
  ['Origin-Agent-Cluster', '?1'],
  ['X-DNS-Prefetch-Control', 'off'],
  ['X-Download-Options', 'noopen'],
  ['X-Permitted-Cross-Domain-Policies', 'none'],
  ['X-XSS-Protection', '0'],
] as const);
// Strict-Transport-Security is the tenant's choice (PATCH .../tenants/:id {"https": {"hsts": true}}),
// added by the edge's HTTPS step to every answer of its site.
