// The edge connects to a worker by a path; before each new connection it
// checks that the path is what the platform made (worker-socket.ts): a socket,
// not a link, owned by root or the edge's own user, in a folder nobody else
// can write. The launcher already keeps tenants out of that folder; this
// keeps a swapped path (a bug, an older data folder's layout) from turning
// the edge into a relay to whatever the path names.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const trusted = (uid: number) => uid === 0 || uid === process.getuid?.();

/** Why the edge must not connect to `socketPath`; undefined when it may. */
export function socketPathProblem(socketPath: string): string | undefined {
  const dir = path.dirname(socketPath);
  const folder = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!folder) return 'its folder does not exist';
  if (!folder.isDirectory()) return 'its folder is not a folder (a link?)';
  if (!trusted(folder.uid)) return `its folder belongs to uid ${folder.uid}, not to the platform`;
  if (folder.mode & 0o022) return `its folder is writable by others (mode ${(folder.mode & 0o7777).toString(8)})`;
  const st = fs.lstatSync(socketPath, { throwIfNoEntry: false });
  if (!st) return 'it does not exist';
  if (!st.isSocket()) return st.isSymbolicLink() ? 'it is a symbolic link, not the socket the platform made' : 'it is not a socket';
  if (!trusted(st.uid)) return `it belongs to uid ${st.uid}, not to the platform`;
  return undefined;
}

/** An error as a refused connection reports it, so callers treat the worker as unreachable. */
export class SocketRefusedError extends Error {
  override readonly name = 'SocketRefusedError';
  readonly code = 'ECONNREFUSED';
  constructor(socketPath: string, problem: string) {
    super(`refused to connect to ${socketPath}: ${problem}`);
  }
}

/** Either the error or the connected socket (the shape undici's connector takes too). */
export type ConnectCallback = (...args: [err: Error, socket: null] | [err: null, socket: net.Socket]) => void;

/** Connects to the worker's socket after the check; the socket, or the error, goes to `done`. */
export function connectChecked(socketPath: string, done: ConnectCallback): void {
  let problem: string | undefined;
  try {
    problem = socketPathProblem(socketPath);
  } catch (err) {
    problem = (err as Error).message;
  }
  if (problem) return done(new SocketRefusedError(socketPath, problem), null);
  const socket = net.connect({ path: socketPath });
  const onError = (err: Error) => done(err, null);
  socket.once('error', onError);
  socket.once('connect', () => {
    socket.off('error', onError);
    done(null, socket);
  });
}
