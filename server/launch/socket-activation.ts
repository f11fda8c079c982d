// systemd socket activation (sd_listen_fds(3)): when started by a socket unit,
// the listening socket is already open as file descriptor 3 (and up), and the
// kernel queues connections on it while the service restarts, so a restart
// refuses none. LISTEN_PID names the process the sockets are for; a child
// that inherits the variables must not take them as its own.
const SD_LISTEN_FDS_START = 3;

export interface ActivatedSockets {
  /** Listening descriptors in the order of the socket unit's ListenStream= lines. */
  readonly fds: readonly number[];
  /** FileDescriptorName= of each, when the unit sets them ('http', 'https'). */
  readonly names: readonly string[];
}

/** The sockets systemd passed to this process, or undefined when it was not socket-activated. */
export function activatedSockets(env: NodeJS.ProcessEnv, pid: number): ActivatedSockets | undefined {
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1 || Number(env.LISTEN_PID) !== pid) return undefined;
  const fds = Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  return { fds, names: fds.map((_, i) => names[i] ?? '') };
}

/** The descriptor for plain HTTP: the one named 'http', else the first. */
export function httpListenFd(sockets: ActivatedSockets): number {
  const named = sockets.names.indexOf('http');
  return sockets.fds[named >= 0 ? named : 0]!;
}

/** The descriptor for HTTPS: the one named 'https', else the second when there are two; undefined when none. */
export function httpsListenFd(sockets: ActivatedSockets): number | undefined {
  const named = sockets.names.indexOf('https');
  if (named >= 0) return sockets.fds[named];
  return sockets.names.includes('http') || sockets.fds.length < 2 ? undefined : sockets.fds[1];
}

/** Removes the activation variables, so no child process believes the sockets are its own. */
export function forgetActivation(env: NodeJS.ProcessEnv): void {
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
}
