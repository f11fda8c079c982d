// The JSON shape of a tenant in API answers.
import type { Store, TenantRecord } from '../db/store.js';
import { effectiveLimits } from '../model/limits.js';
import type { CertificateManager } from '../tls/certificate-manager.js';

export function tenantView(t: TenantRecord, store: Store, urlOf: (id: string) => string, certificates: CertificateManager) {
  return {
    id: t.id,
    createdAt: t.createdAt,
    url: urlOf(t.id),
    domains: store.domains.forTenant(t.id).map((d) => ({
      domain: d.domain,
      verified: d.verified,
      default: d.isDefault,
      redirect: d.redirect,
      certificate: d.verified ? certificates.view(d.domain).status : 'none',
    })),
    liveDeployId: t.liveDeployId,
    limits: effectiveLimits(t.limitOverrides),
    network: t.network,
    deployBranch: t.deployBranch,
    keepReleases: t.keepReleases,
    https: t.https,
  };
}
