// The Express baselines, one process each:
//   node express-server.js static <port> <host>=<dir>...   express.static per Host
//   node express-server.js route <port>                    one JSON route at /api/hello
import express, { type RequestHandler } from 'express';

const [mode, portArg, ...sites] = process.argv.slice(2);
const app = express();
app.disable('x-powered-by');

if (mode === 'static') {
  const byHost = new Map<string, RequestHandler>();
  for (const s of sites) {
    const eq = s.indexOf('=');
    byHost.set(s.slice(0, eq), express.static(s.slice(eq + 1)));
  }
  app.use((req, res, next) => {
    const handler = byHost.get(req.hostname);
    if (handler) handler(req, res, next);
    else res.status(404).end();
  });
} else if (mode === 'route') {
  app.get('/api/hello', (_req, res) => {
    res.json({ hello: 'world', n: 42 });
  });
  app.get('/', (_req, res) => {
    res.send('ok');
  });
} else {
  console.error('usage: express-server.js static|route <port> [host=dir...]');
  process.exit(2);
}

app.listen(Number(portArg), '127.0.0.1');
