// The JSON shape of a domain in API answers: the claim, its certificate, and
// while it is pending, how to prove it.
import type { DomainRecord } from '../db/store.js';
import type { DomainService } from '../domains/domain-service.js';
import type { CertificateManager } from '../tls/certificate-manager.js';

export function domainView(d: DomainRecord, domains: DomainService, certificates: CertificateManager) {
  return {
    domain: d.domain,
    verified: d.verified,
    default: d.isDefault,
    wildcard: d.domain.startsWith('*.'),
    redirect: d.redirect,
    createdAt: d.createdAt,
    verifiedAt: d.verifiedAt,
    certificate: d.verified ? certificates.view(d.domain) : { status: 'none' as const },
    ...(d.verified ? {} : { verification: domains.verification(d) }),
  };
}
