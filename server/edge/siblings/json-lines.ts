// One JSON object per line over a local socket: the edges' change channel.
// Both ends are processes of the platform user; a line that is not JSON, or
// longer than the cap, ends the connection (the sibling then restarts).
import type net from 'node:net';

const MAX_LINE = 16 * 1024 * 1024;

export function readJsonLines(socket: net.Socket, onMessage: (message: Record<string, unknown>) => void): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        socket.destroy(new Error('a line that is not JSON on the edges\' channel'));
        return;
      }
      if (typeof message === 'object' && message !== null) onMessage(message as Record<string, unknown>);
    }
    if (pending.length > MAX_LINE) socket.destroy(new Error('an oversized line on the edges\' channel'));
  });
}

export function sendJsonLine(socket: net.Socket, message: object): void {
  if (!socket.destroyed) socket.write(JSON.stringify(message) + '\n');
}
