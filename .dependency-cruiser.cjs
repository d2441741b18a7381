/**
 * The import graph's rules (checked by test/layers.test.ts): dependencies
 * point down, never up or sideways, and there are no cycles.
 *
 *   cli, dev, bench, test                   entry points and tooling (dev: the local stack): may use anything below
 *   publisher                               the connected side (stella feeds sync): uses only the
 *                                           builder's side (builder, bundle, signing, lib); nothing of
 *                                           the site (infra, functions, queue, api, scan) uses it
 *   api                                     the HTTP service
 *   queue                                   BullMQ wiring (queue/worker-main.ts, the worker process's
 *                                           entry point, also wires the scanner into the re-scan worker)
 *   functions                               the pipeline stages; beside them the features they serve
 *                                           (mirror/, sboms/, maintenance/, quarantine/) and common/
 *   builder | scan                          DB building and DB use (trivy-db | trivy): never each other
 *   identity | catalog                      who a person is (directory, OpenID, role map) | what an image holds
 *                                           (the cataloguer, like Syft beside Grype): each stands on lib only
 *   infra                                   storage clients, SQL, the environment
 *   signing                                 keys and signatures
 *   bundle                                  the bundle format both sides share
 *   lib                                     config, errors, logging, metrics, tokens (scan, operator and desk), air-gap
 */
const ANY_ABOVE = (...dirs) => `^(${dirs.join('|')})/`;
const PRODUCTION = '^(lib|bundle|signing|infra/|identity|catalog|builder|scan|functions|queue|api|publisher|cli|bin)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'a cycle hides which module owns what', from: {}, to: { circular: true } },
    {
      name: 'production-uses-no-tooling',
      severity: 'error',
      comment: 'product code never imports tests, benchmarks or the dev stack',
      from: { path: PRODUCTION },
      to: { path: '^(test|bench|dev)/' },
    },
    { name: 'lib-is-the-bottom', severity: 'error', from: { path: '^lib/' }, to: { path: ANY_ABOVE('bundle', 'signing', 'infra', 'identity', 'catalog', 'builder', 'scan', 'functions', 'queue', 'api', 'cli') } },
    {
      name: 'identity-stands-on-lib',
      severity: 'error',
      comment: 'signing in (directory, OpenID, role map) needs lib only; sessions and routes that use it live in api/, their table in infra/',
      from: { path: '^identity/' },
      to: { path: ANY_ABOVE('bundle', 'signing', 'infra', 'catalog', 'builder', 'scan', 'functions', 'queue', 'api', 'cli', 'publisher') },
    },
    {
      name: 'only-the-services-sign-people-in',
      severity: 'error',
      comment: 'identity/ is used by the API and the CLI only',
      from: { path: '^(lib|bundle|signing|infra|catalog|builder|scan|functions|queue|publisher)/' },
      to: { path: '^identity/' },
    },
    {
      name: 'catalog-stands-on-lib',
      severity: 'error',
      comment: 'the image cataloguer reads layers and package databases into an SBOM: lib only, nothing of the pipeline or the scanner',
      from: { path: '^catalog/' },
      to: { path: ANY_ABOVE('bundle', 'signing', 'infra', 'identity', 'builder', 'scan', 'functions', 'queue', 'api', 'cli', 'publisher') },
    },
    { name: 'bundle-is-only-the-format', severity: 'error', from: { path: '^bundle/' }, to: { path: ANY_ABOVE('signing', 'infra', 'builder', 'scan', 'functions', 'queue', 'api', 'cli') } },
    { name: 'signing-stands-alone', severity: 'error', from: { path: '^signing/' }, to: { path: ANY_ABOVE('infra', 'builder', 'scan', 'functions', 'queue', 'api', 'cli') } },
    { name: 'infra-is-below-the-pipeline', severity: 'error', from: { path: '^infra/' }, to: { path: ANY_ABOVE('signing', 'builder', 'scan', 'functions', 'queue', 'api', 'cli') } },
    { name: 'builder-does-not-use-the-scanner', severity: 'error', from: { path: '^builder/' }, to: { path: ANY_ABOVE('scan', 'functions', 'queue', 'api', 'cli') } },
    { name: 'scanner-does-not-use-the-builder', severity: 'error', from: { path: '^scan/' }, to: { path: ANY_ABOVE('builder', 'functions', 'queue', 'api', 'cli') } },
    {
      name: 'token-desk-stands-on-lib-and-infra',
      severity: 'error',
      comment: 'the free-token e-mail desk (publisher side) uses lib and infra only: nothing of the pipeline, the scanner, the builder, the rest of the publisher or tooling',
      from: { path: '^publisher/token-desk/' },
      to: { path: '^(builder|scan|functions|queue|api|cli|bench|test|dev|publisher/(?!token-desk/))' },
    },
    {
      name: 'nothing-below-uses-the-token-desk',
      severity: 'error',
      comment: 'the site (lib, bundle, signing, infra, builder, scan, functions, queue, api) never imports the desk; only the CLI starts it',
      from: { path: '^(lib|bundle|signing|infra|builder|scan|functions|queue|api)/' },
      to: { path: '^publisher/token-desk/' },
    },
    {
      name: 'no-stage-imports-a-stage',
      severity: 'error',
      comment: 'each stage stands alone (any worker runs any stage); what two stages share lives beside them in functions/common/ (the list: lib/stages.ts STAGES)',
      from: { path: '^functions/(verify|unpack|load|activate|images)\\.ts$' },
      to: { path: '^functions/(verify|unpack|load|activate|images)\\.ts$' },
    },
    { name: 'stages-know-no-wiring', severity: 'error', from: { path: '^functions/' }, to: { path: ANY_ABOVE('builder', 'scan', 'queue', 'api', 'cli') } },
    { name: 'queue-knows-no-service', severity: 'error', from: { path: '^queue/', pathNot: '^queue/worker-main\\.ts$' }, to: { path: ANY_ABOVE('builder', 'scan', 'api', 'cli') } },
    {
      name: 'worker-entry-point-wires-only-the-scanner',
      severity: 'error',
      comment: 'the worker process may hand the scanner to the re-scan worker, nothing more',
      from: { path: '^queue/worker-main\\.ts$' },
      to: { path: ANY_ABOVE('builder', 'api', 'cli') },
    },
    { name: 'api-knows-no-cli', severity: 'error', from: { path: '^api/' }, to: { path: ANY_ABOVE('builder', 'cli') } },
    {
      name: 'publisher-uses-only-the-builder-side',
      severity: 'error',
      comment: 'the publisher fetches feeds and builds kits: builder, bundle, signing and lib are all it needs (the token desk, publisher/token-desk/, has its own rule)',
      from: { path: '^publisher/(?!token-desk/)' },
      to: { path: ANY_ABOVE('infra', 'scan', 'functions', 'queue', 'api', 'cli') },
    },
    {
      name: 'site-knows-no-publisher',
      severity: 'error',
      comment: 'the site (air-gapped) never carries the code that reaches the upstreams; only the CLI runs it',
      from: { path: '^(lib|bundle|signing|infra|builder|scan|functions|queue|api)/' },
      to: { path: '^publisher/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
