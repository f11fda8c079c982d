// The first edge's side of forwarding: a sibling edge opens one connection
// here per client connection it forwards, writes `PEER <address> <port>\n`
// (the client's socket peer), then plain HTTP/1.1. The connection is handed to
// the first edge's own HTTP server as if the client had connected: the same
// pipeline, the same client address for the audit trail, throttles, access
// log and X-Forwarded-For (a trusted proxy's headers are believed as usual,
// since its address is the peer). Only the platform user can connect (sibling-sockets.ts).
import fs from 'node:fs';
import net from 'node:net';
import type http from 'node:http';
import type { Logger } from '../../log.js';

const MAX_PREAMBLE = 128;
const PREAMBLE = /^PEER (\S{1,64}) (\d{1,5})$/;

export function peerPreamble(address: string | undefined, port: number | undefined): string {
  return `PEER ${address || '-'} ${port ?? 0}\n`;
}

export function acceptForwardedConnections(socketPath: string, server: http.Server, log: Logger): Promise<net.Server> {
  fs.rmSync(socketPath, { force: true });
  const listener = net.createServer((socket) => {
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl === -1) {
        if (head.length > MAX_PREAMBLE) socket.destroy();
        return;
      }
      socket.removeListener('data', onData);
      socket.pause();
      const m = PREAMBLE.exec(head.subarray(0, nl).toString('latin1'));
      if (!m) {
        log.warn('a forwarded connection without its client line; closed');
        return void socket.destroy();
      }
      const address = m[1] === '-' ? undefined : m[1];
      Object.defineProperty(socket, 'remoteAddress', { value: address, configurable: true });
      Object.defineProperty(socket, 'remotePort', { value: Number(m[2]), configurable: true });
      Object.defineProperty(socket, 'remoteFamily', { value: address === undefined ? undefined : net.isIPv6(address) ? 'IPv6' : 'IPv4', configurable: true });
      const rest = head.subarray(nl + 1);
      if (rest.length > 0) socket.unshift(rest);
      server.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
  });
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(socketPath, () => {
      fs.chmodSync(socketPath, 0o600);
      resolve(listener);
    });
  });
}
