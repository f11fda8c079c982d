// A deliberately misbehaving edge for the supervisor tests. Started by the
// supervisor in place of the real edge (as the user tenantry), it takes the
// inherited listening socket, looks for a handle channel to the supervisor
// (there must be none), sends an oversized frame, garbage and a launch of
// /bin/sh on the request pipe, and finally asks `hello`. It writes what it saw
// to <data>/rogue-edge.json.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readFrames, writeFrame, MAX_FRAME_BYTES } from '../../server/supervisor/ipc-protocol.js';

const dataDir = process.argv[process.argv.indexOf('--data-dir') + 1]!;
const results: Record<string, unknown> = {};
const finish = () => {
  fs.writeFileSync(path.join(dataDir, 'rogue-edge.json'), JSON.stringify(results));
  process.exit(0);
};
setTimeout(() => {
  results.timedOut = true;
  finish();
}, 15_000).unref();

const pipe = new net.Socket({ fd: 4, readable: true, writable: true });
const answers = new Map<number, Record<string, unknown>>();
readFrames(pipe, {
  onMessage: (m) => {
    const msg = m as Record<string, unknown>;
    if (typeof msg.id === 'number') answers.set(msg.id, msg);
    if (msg.id === 3) {
      results.launchShell = answers.get(2);
      results.hello = msg;
      finish();
    }
  },
  onDropped: () => {},
});

// The listening socket is inherited as fd 5; there is no IPC channel to send anything back on.
results.hasIpcChannel = typeof process.send === 'function';
const inherited = net.createServer();
inherited.once('error', (err) => {
  results.gotListener = `error: ${err.message}`;
  attack();
});
inherited.listen({ fd: 5 }, () => {
  results.gotListener = true;
  inherited.close();
  attack();
});

function attack(): void {
  // The request pipe: an oversized frame, garbage, a launch of a shell, and hello.
  const head = Buffer.alloc(4);
  head.writeUInt32BE(MAX_FRAME_BYTES + 1);
  pipe.write(head);
  pipe.write(Buffer.alloc(MAX_FRAME_BYTES + 1, 0x20));
  const junk = Buffer.alloc(4);
  junk.writeUInt32BE(5);
  pipe.write(Buffer.concat([junk, Buffer.from('}{}{}')]));
  writeFrame(pipe, {
    id: 2,
    op: 'launchWorker',
    spec: {
      tenantId: 'isorogue',
      releaseDir: '/',
      dataDir: '/',
      runDir: '/tmp',
      socketPath: '/tmp/x.sock',
      logFile: '/etc/passwd',
      entry: '/bin/sh',
      args: ['-c', 'id'],
      env: {},
      limits: { memoryMB: 256, cpuPercent: 50, pids: 128, archiveMB: 512, files: 20000, diskMB: 1024 },
      network: 'all',
    },
  });
  writeFrame(pipe, { id: 3, op: 'hello' });
}
