// A sibling edge's way to the first edge for every request it does not answer
// itself (the platform host, dynamic and plugin routes, ACME and domain
// proofs): the request goes over a connection of its own to forward.sock,
// preceded by the client's address (forwarded-connections.ts), with the URL
// the client sent, so the first edge runs the whole pipeline as if the client
// had come to it. One upstream connection per client connection, kept while
// the client keeps its own: requests of one client stay in order.
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../../log.js';
import { sendError } from '../../error-response.js';
import { peerPreamble } from './forwarded-connections.js';

/** Framing and per-connection headers: each hop frames its own message. */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'expect', 'upgrade']);
const NOT_RETURNED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'x-tenantry-edge']);

export type Forward = (req: http.IncomingMessage, res: http.ServerResponse, url: string) => void;

function rawWithout(raw: readonly string[], skip: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!skip.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

export function forwardToFirstEdge(socketPath: string, log: Logger): Forward {
  const agents = new WeakMap<net.Socket, http.Agent>();

  function agentFor(client: net.Socket): http.Agent {
    let agent = agents.get(client);
    if (agent) return agent;
    const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // One upstream connection per client connection, carrying the client's own address first.
    (a as unknown as { createConnection: () => net.Socket }).createConnection = () => {
      const upstream = net.connect(socketPath);
      upstream.write(peerPreamble(client.remoteAddress, client.remotePort));
      return upstream;
    };
    client.once('close', () => a.destroy());
    agents.set(client, a);
    agent = a;
    return agent;
  }

  return (req, res, url) => {
    const upstream = http.request({
      agent: agentFor(req.socket),
      method: req.method,
      path: url,
      headers: rawWithout(req.rawHeaders, NOT_FORWARDED) as unknown as http.OutgoingHttpHeaders,
    });
    upstream.on('response', (answer) => {
      // Whatever the steps before set (e.g. HSTS) is the first edge's to decide again.
      for (const name of res.getHeaderNames()) if (name !== 'x-tenantry-edge') res.removeHeader(name);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, rawWithout(answer.rawHeaders, NOT_RETURNED));
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (res.headersSent) return void res.destroy();
      log.warn('the first edge did not answer a forwarded request', { err });
      sendError(res, 'worker_unavailable', 'The platform is restarting; try again in a moment.', { 'Retry-After': '1' });
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };
}
