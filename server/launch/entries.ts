// The two scripts the platform starts as processes of their own, and the
// folder of the plugin code workers load. Paths, not imports: the root
// supervisor never loads the code it launches.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const serverRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The runtime inside a tenant's sandbox (server/runtime/main.ts, compiled). */
export const WORKER_ENTRY = path.join(serverRoot, 'runtime', 'main.js');

/**
 * Built-in plugins, compiled: dist/plugins/<name>/index.js. The runtime loads
 * plugin code only from here (plugin-launch.ts), by name.
 */
export const PLUGINS_ROOT = path.join(serverRoot, '..', 'plugins');

/** The unprivileged edge process (server/app/edge-process.ts, compiled). */
export const EDGE_ENTRY = path.join(serverRoot, 'app', 'edge-process.js');

/** The descriptor on which the edge finds its listening HTTP socket (fd 4 is its request pipe to the supervisor). */
export const EDGE_LISTEN_FD = 5;

/** The descriptor of the edge's HTTPS listening socket, when TENANTRY_HTTPS_PORT is set. */
export const EDGE_HTTPS_LISTEN_FD = 6;

/** A sibling edge (server/app/sibling-edge-process.ts, compiled), started by the first edge when TENANTRY_EDGES > 1. */
export const SIBLING_EDGE_ENTRY = path.join(serverRoot, 'app', 'sibling-edge-process.js');
/** A deploy worker: unpacks, indexes and precompresses releases outside the edge (server/deploy/deploy-worker-main.ts, compiled). */
export const DEPLOY_WORKER_ENTRY = path.join(serverRoot, 'deploy', 'deploy-worker-main.js');
