// The examples `eppkit <command> --help` shows, per command (node-proxy and `bench merge` keep
// theirs next to their options). Every one is a command a user can paste: cli/eppkit-cli.test.ts
// parses each with the real options, as it does the README's.
export const COMMAND_EXAMPLES: Readonly<Record<string, ReadonlyArray<readonly [command: string, what: string]>>> = {
  'mock-epp': [
    ['$0 mock-epp --port 9002 --admin-port 9003 --endpoints 127.0.0.2:8000,127.0.0.3:8000', 'a mock EPP picking round-robin over two endpoints'],
    ['$0 mock-epp --port 0 --admin-port 0 --config my-epp.yaml', 'rules and faults from a file (docs/mock-epp.md); free ports, printed'],
    ['$0 mock-epp --port 9002 --admin-port 9003 --endpoints 127.0.0.2:8000 --profile gie-epp', 'answer like the inference extension\'s EPP'],
    ['$0 mock-epp --port 9004 --admin-port 9005 --role bbr', 'a body-based routing ext_proc server'],
  ],
  run: [
    ['$0 run', 'the built-in suite against node-proxy'],
    ['$0 run --data-plane node-proxy,nginx,envoy --report-dir reports/today', 'several data planes, reports in one folder'],
    ['$0 run scenarios/fail-open-epp-down.yaml scenarios/epp-timeout.yaml --data-plane nginx', 'some scenarios only'],
    ['$0 run --plane planes/envoy.plane.yaml', 'a data plane described by a plane file (docs/your-data-plane.md)'],
    ['$0 run --tag core --bail', 'the core profile, stopping at the first failure'],
    ['$0 run --data-plane external --external-url http://127.0.0.1:8080 --external-epp-port 9002', 'your own running plane'],
  ],
  list: [
    ['$0 list', 'scenarios and data planes, and which run here'],
    ['$0 list --json --plane planes/envoy.plane.yaml', 'machine-readable, checking a plane file too'],
  ],
  report: [
    ['$0 report reports/today/results.json', 'the scenario × data plane matrix into docs/MATRIX.md'],
    ['$0 report a/results.json b/results.json --out MATRIX.md --readme README.md', 'several runs merged (later ones win), also into the README'],
  ],
  bench: [
    ['$0 bench --duration 10s', 'every data plane and direct: the EPP hop cost'],
    ['$0 bench --data-plane nginx,envoy --rate 2000 --threshold "p99<5"', 'a fixed arrival rate, failing above 5 ms p99'],
    ['$0 bench nonblocking --data-plane nginx', 'does a slow EPP block other requests?'],
    ['$0 bench mock-epp --streams 64', 'the mock EPP alone over ext_proc'],
    ['$0 bench --url http://127.0.0.1:8080/v1/completions --duration 30s', 'a gateway that already runs'],
  ],
  build: [
    ['$0 build nginx', 'the native nginx module; prints the .so path'],
    ['$0 build bench', "the bench's compiled echo backend and EPP"],
    ['$0 build images', 'the Docker images'],
  ],
  backend: [
    ['$0 backend --listen 127.0.0.2:8000 --name pod-a', 'an echo model server'],
    ['$0 backend --listen 127.0.0.3:8000 --name pod-b --latency-ms 50 --error-status 503', 'a slow, failing one'],
  ],
  fuzz: [
    ['$0 fuzz --data-plane node-proxy --seed 1 --duration 5m', 'search for 5 minutes'],
    ['$0 fuzz --data-plane nginx --seed 7 --runs 200', '200 cases per profile'],
    ['$0 fuzz --data-plane nginx --replay reports/fuzz-1/failures/nginx-close-buffered-seed7-1.case.json', 'replay a saved failure'],
  ],
};
