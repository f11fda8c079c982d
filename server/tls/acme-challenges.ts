// Pending ACME HTTP-01 challenges, in memory: the edge answers
// `/.well-known/acme-challenge/<token>` on the challenged name with its key
// authorization, and nothing for any other name or token.
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

export class AcmeChallenges {
  private readonly byToken = new Map<string, { readonly domain: string; readonly keyAuthorization: string }>();

  add(domain: string, token: string, keyAuthorization: string): void {
    this.byToken.set(token, { domain, keyAuthorization });
  }

  remove(token: string): void {
    this.byToken.delete(token);
  }

  answer(host: string, token: string): string | undefined {
    const c = this.byToken.get(token);
    return c && c.domain === host ? c.keyAuthorization : undefined;
  }
}
