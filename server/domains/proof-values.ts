// The proof a tenant gives that a domain is its own, derived from the master
// secret with HMAC over (tenant, domain): nothing extra is stored, each
// tenant gets its own value for the same name (one tenant's proof never
// proves another's claim), and the value cannot be guessed without the secret.
import crypto from 'node:crypto';

export const TXT_PREFIX = '_tenantry';
export const HTTP_PROOF_PATH = '/.well-known/tenantry/';

export interface ProofValues {
  /** The TXT record's name: `_tenantry.<domain>`. */
  readonly txtName: string;
  /** The TXT record's value, and the body served at the HTTP proof URL. */
  readonly value: string;
  /** The last path segment of the HTTP proof URL. */
  readonly httpToken: string;
}

function mac(secret: string, purpose: string, tenantId: string, domain: string): Buffer {
  return crypto.createHmac('sha256', secret).update(`${purpose}\0${tenantId}\0${domain}`).digest();
}

export function proofValues(secret: string, tenantId: string, domain: string): ProofValues {
  return {
    txtName: `${TXT_PREFIX}.${domain}`,
    value: 'tenantry-verify=' + mac(secret, 'domain-proof', tenantId, domain).toString('base64url').slice(0, 32),
    httpToken: mac(secret, 'domain-proof-http', tenantId, domain).toString('hex').slice(0, 32),
  };
}
