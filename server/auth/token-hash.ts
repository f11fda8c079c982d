// Token values are random; only their keyed hash is stored, so a copy of the
// database alone neither reveals nor lets anyone check a token.
import crypto from 'node:crypto';

export function newTokenValue(): string {
  return 'tnt_' + crypto.randomBytes(24).toString('base64url');
}

export function hashToken(secret: string, value: string): string {
  return crypto.createHmac('sha256', secret).update(value).digest('hex');
}

export function newId(prefix: string): string {
  return prefix + '_' + crypto.randomBytes(8).toString('hex');
}

/** Time-sortable deploy id: `d` + base36 milliseconds + random tail. */
export function newDeployId(): string {
  return 'd' + Date.now().toString(36).padStart(9, '0') + crypto.randomBytes(3).toString('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && crypto.timingSafeEqual(ab, bb);
}
