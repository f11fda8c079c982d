// Who made a change, for the audit trail: the admin, a token (id and name), a
// platform job (`acme`, `system`), with the client address when a request
// made it. The API and git build one per request; services pass it through
// to the audit log untouched.

export interface Actor {
  /** `admin`, `token:<id>`, `anonymous`, or a platform job such as `acme`. */
  readonly id: string;
  /** The token's name, when a token acted. */
  readonly name?: string;
  /** The client's address (after trusted proxies), when a request made the change. */
  readonly address?: string;
  /** Rows written for this actor's request: the API writes one itself when a request wrote none. */
  readonly trail?: { rows: number };
}

/** A plain id (`admin`, `acme`, ...) or a full actor. */
export type ActorRef = string | Actor;

export function actorOf(ref: ActorRef): Actor {
  return typeof ref === 'string' ? { id: ref } : ref;
}

export function actorId(ref: ActorRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}
