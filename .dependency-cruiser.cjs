// The architecture check (`npm run check:layers`, part of `npm test`).
// Each folder of server/ sits in one layer; a module may import from its own
// layer and the layers below, never from a layer above, and no import circle
// is allowed (type-only imports included). README "Source layout" explains the layers.
/** Lowest first. Folders in one row may import each other unless a rule below says otherwise. */
const LAYERS = [
  ['config.ts', 'errors.ts', 'error-response.ts', 'log.ts', 'paths.ts', 'model', 'disk', 'metrics'], // foundation: settings, the error catalogue, plain value types, durable writes, metric definitions
  ['db', 'launch', 'audit'], // platform tables; the contract between "start a worker" and "how it is run"; audit retention
  ['runtime'], // code that runs inside a tenant's sandbox (loads nothing of the platform but launch/)
  ['auth', 'sandbox'], // who is asking; the isolation layers and launchers
  ['supervisor'], // the root process and its typed request pipe
  ['static'], // a release's in-memory index (built at deploy) and the static hot path
  ['releases'], // which release is live, retention, the starter site
  ['tenants'], // tenant lifecycle, domain map, site logs
  ['domains', 'tls'], // custom domains and their proof; certificates, SNI and ACME
  ['pool'], // tenants' worker processes, seen from the edge
  ['plugins', 'mail'], // tenants' plugin settings, the catalogue, the admin relay; the capability channel and mail
  ['deploy'], // archive rules, extraction, the deploy pipeline
  ['backup'], // backup and restore of a whole data folder
  ['git'], // git smart HTTP and push deploys
  ['dashboard'], // dashboard sessions, CSRF checks, the live log stream
  ['edge', 'api'], // the request pipeline and proxy; the control API
  ['app'], // composition roots: build the platform, start the edge
  ['cli'], // the tenantry command
];

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const pathsOf = (row) => `^server/(${row.map(esc).join('|')})(/|$)`;

const layerRules = LAYERS.slice(0, -1).map((row, i) => ({
  name: `layer-${row.join('+')}`,
  comment: `${row.join(', ')} may not import from a layer above it`,
  severity: 'error',
  from: { path: pathsOf(row) },
  to: { path: pathsOf(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'runtime-stays-small',
      comment: 'the sandboxed runtime may load only itself and the launch contract (never platform state or secrets)',
      severity: 'error',
      from: { path: '^server/runtime/' },
      to: { path: '^server/', pathNot: '^server/(runtime|launch)/' },
    },
    {
      name: 'edge-and-api-apart',
      comment: 'the edge gets the control API handed in by app/; the API never reaches into the edge',
      severity: 'error',
      from: { path: '^server/(edge|api)/' },
      to: { path: '^server/(edge|api)/', pathNot: '^server/$1/' },
    },
    {
      name: 'static-index-below-serve',
      comment: 'what is built at deploy (static/index) does not depend on the hot path (static/serve)',
      severity: 'error',
      from: { path: '^server/static/index/' },
      to: { path: '^server/static/(serve/|site-registry)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'plugins-through-their-api',
      comment: 'plugins use the plugin API and their own code only',
      severity: 'error',
      from: { path: '^plugins/' },
      to: { path: '^server/', pathNot: '^server/(model|launch)/' },
    },
  ],
  options: {
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
