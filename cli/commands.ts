// The commands of `eppkit`, one module each, owned by the folder that implements them.
// Each module's default export is a yargs CommandModule.
export const COMMAND_MODULES = [
  '../mock-epp/mock-epp-command.ts',
  '../proxies/node-proxy/node-proxy-command.ts',
  '../harness/cli/run-command.ts',
  '../harness/cli/list-command.ts',
  '../harness/cli/report-command.ts',
  '../harness/bench/bench-command.ts',
  '../harness/build/build-command.ts',
  '../harness/backends/backend-command.ts',
  '../harness/fuzz/fuzz-command.ts',
] as const;
