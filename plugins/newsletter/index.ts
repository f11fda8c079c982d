// The newsletter plugin: subscribe forms with double opt-in, one-click
// unsubscribe, issues sent at most once per subscriber (also across crashes).
// See README "Newsletter" and CONTRACT section 7 for the surface.
import { definePlugin } from '../plugin-api.js';
import { configSchema } from './config.js';
import { createNewsletter, type Newsletter } from './newsletter.js';

/** A worker runs one tenant; a list only so that a test may start several. */
const running: Newsletter[] = [];

export default definePlugin({
  manifest: {
    name: 'newsletter',
    version: '1.0.0',
    description: 'Subscribe forms with double opt-in, one-click unsubscribe, and issues sent at most once to each reader.',
    configSchema,
  },
  onWorkerStart(ctx) {
    // The sender loop starts here and resumes any issue left sending by an earlier worker.
    const current = createNewsletter(ctx);
    running.push(current);
    const pending = current.store.db.prepare(`SELECT count(*) AS n FROM issues WHERE status = 'sending'`).get() as { n: number };
    if (pending.n > 0) ctx.log.info(`resuming ${pending.n} issue(s) left sending`);
    return { publicRouter: current.publicRouter, adminRouter: current.adminRouter };
  },
  async onWorkerStop() {
    const all = running.splice(0);
    await Promise.all(all.map((n) => n.stop()));
  },
});
