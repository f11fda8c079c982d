// The worker's listening socket, made by the launcher, never by the worker.
// A worker that could create (and so rename, unlink or symlink) its own socket
// path could make the edge connect anywhere the edge's user can: another
// tenant's worker, a local daemon. So the launcher binds the socket in a folder
// only the platform writes, gives it to the platform's user alone, and hands
// the worker the listening descriptor; the worker never sees the path.
//
// Node has no bind-without-listen and no dup(): the socket is bound under a
// temporary name and renamed into place (libuv unlinks the name it bound when
// this process closes its copy, and that name is then already gone).
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { inPinnedFolder, openBeneath } from './safe-path.js';

/** Who may connect: the socket file's owner (mode 0600). */
export interface SocketOwner {
  readonly uid: number;
  readonly gid: number;
}

export interface WorkerSocket {
  /** The listening descriptor, for the child's stdio (dup'ed into it by spawn). */
  readonly fd: number;
  /** Closes this process's copy; call right after spawning, before any await (no accept here). */
  release(): void;
}

/** Where the socket is bound: `dataRoot` walked without following links (root), or a plain path. */
export interface SocketPlace {
  /** The data folder, trusted; every component below it is opened without following links. */
  readonly dataRoot: string;
  /** The folder to hold the socket (the tenant's run folder). */
  readonly dir: string;
  /** The socket's file name in `dir`. */
  readonly name: string;
}

/** How long a bind may take before it counts as failed (it is a local syscall: never, in practice). */
const BIND_DEADLINE_MS = 5000;

function listen(server: net.Server, bindPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`binding ${bindPath} took longer than ${BIND_DEADLINE_MS} ms`)), BIND_DEADLINE_MS);
    server.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    server.listen({ path: bindPath, backlog: 511 }, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Binds and listens on `<dir>/<name>` (replacing what was there), mode 0600,
 * owned by `owner` when given (root only). The folder is reached through a
 * pinned descriptor, so a rename of a folder above it cannot redirect the bind.
 */
export async function bindWorkerSocket(place: SocketPlace, owner: SocketOwner | undefined): Promise<WorkerSocket> {
  if (!/^[\w.-]+\.sock$/.test(place.name)) throw new Error(`${place.name} is not a socket name`);
  const dirFd = openBeneath(place.dataRoot, place.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const pinned = `/proc/self/fd/${dirFd}`;
  const temp = `${pinned}/.${place.name}.${crypto.randomBytes(6).toString('hex')}`;
  const server = net.createServer();
  // Nothing may connect before the worker runs; if something did, we never serve it.
  server.on('connection', (s) => s.destroy());
  try {
    await listen(server, temp);
    fs.chmodSync(temp, 0o600);
    if (owner) fs.lchownSync(temp, owner.uid, owner.gid);
    fs.renameSync(temp, `${pinned}/${place.name}`);
  } catch (err) {
    server.close();
    fs.rmSync(temp, { force: true });
    fs.closeSync(dirFd);
    throw err;
  }
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    server.close();
    fs.closeSync(dirFd);
    throw new Error('the listening socket has no descriptor on this platform');
  }
  let released = false;
  return {
    fd,
    release: () => {
      if (released) return;
      released = true;
      // uv_close unlinks the bound (temporary, already renamed) name through the still-open folder descriptor.
      server.close();
      fs.closeSync(dirFd);
    },
  };
}

/** Removes the socket `<dir>/<name>` (worker gone), without following links above it. */
export function removeWorkerSocket(place: SocketPlace): void {
  try {
    inPinnedFolder(place.dataRoot, place.dir, (pinned) => fs.rmSync(path.join(pinned, place.name), { force: true }));
  } catch {
    /* the folder is gone with its tenant */
  }
}

/** The socket's place for a launch spec's path. */
export function socketPlace(dataRoot: string, socketPath: string): SocketPlace {
  return { dataRoot, dir: path.dirname(socketPath), name: path.basename(socketPath) };
}
