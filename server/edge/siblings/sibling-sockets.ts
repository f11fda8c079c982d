// Where the edges of one platform meet: two Unix sockets of the first edge,
// in a folder only the platform user can enter (tenants' workers, other
// users, cannot connect). `_edges` cannot be a tenant id (ids start with a letter).
import path from 'node:path';

export function siblingSocketDir(runRoot: string): string {
  return path.join(runRoot, '_edges');
}

/** The change channel: each sibling edge registers here and acknowledges every change. */
export function linkSocketPath(runRoot: string): string {
  return path.join(siblingSocketDir(runRoot), 'link.sock');
}

/** Requests a sibling does not answer itself, with the client's address in a first line (forwarded-connections.ts). */
export function forwardSocketPath(runRoot: string): string {
  return path.join(siblingSocketDir(runRoot), 'forward.sock');
}
