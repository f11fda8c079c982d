// What one edge tells the others when the platform's routing state changes.
// Everything a sibling edge answers by itself comes from two in-memory
// structures: the tenants' live release indexes and the host -> tenant map.

export interface SiblingChange {
  /** Reload this tenant's live release (switched, removed, or its compressed copies made). */
  readonly tenantId?: string;
  /** Rebuild the host -> tenant map (domains, HTTPS options, tenants created or removed). */
  readonly domains?: boolean;
}
