// `eppkit mock-epp`: runs the mock EPP until SIGTERM/SIGINT, then drains and exits 0.
// Prints exactly two lines on stdout when ready (the contract other tools wait for).
import type { CommandModule } from 'yargs';
import { EppkitError } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { DnsPool } from './dns-pool.ts';
import { TRANSPORTS, type Transport } from './grpc-transport.ts';
import { MockEpp } from './mock-epp.ts';
import { isEndpoint, loadMockEppConfigFile, parseMockEppConfig, withProfile } from './mock-epp-config.ts';
import { DEFAULT_PROFILE, PROFILES, PROFILE_MODELS, type ProfileName } from './fidelity-profiles.ts';
import { env } from '../core/env.ts';

interface Args {
  port: number;
  'admin-port': number;
  host: string;
  'admin-host'?: string;
  'admin-token'?: string;
  endpoints?: string;
  'endpoints-dns'?: string;
  'endpoints-dns-refresh-ms': number;
  config?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  directives: boolean;
  'grace-ms': number;
  transport: Transport;
  profile?: ProfileName;
  role?: 'epp' | 'bbr';
}

const command: CommandModule<object, Args> = {
  command: 'mock-epp',
  describe: 'Run the programmable mock Endpoint Picker (ext_proc gRPC server + admin HTTP API)',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 0, describe: 'gRPC port (0 = a free one)' })
      .option('admin-port', { type: 'number', default: 0, describe: 'admin HTTP port (0 = a free one)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address for gRPC and admin (keep it on loopback)' })
      .option('admin-host', { type: 'string', describe: 'address for the admin API (default: --host)' })
      .option('admin-token', { type: 'string', describe: 'require Authorization: Bearer <token> on the admin API (also EPPKIT_ADMIN_TOKEN)' })
      .option('endpoints', { type: 'string', describe: 'the pool, ip:port,ip:port (overrides the config file\'s endpoints)' })
      .option('endpoints-dns', {
        type: 'string',
        describe: 'the pool from DNS: name:port, re-resolved every refresh (in Kubernetes: a headless Service over the model-server pods)',
      })
      .option('endpoints-dns-refresh-ms', { type: 'number', default: 2000, describe: 'how often --endpoints-dns is resolved again' })
      .option('config', { type: 'string', describe: 'config file, YAML or JSON (docs/mock-epp.md)' })
      .option('tls-cert', { type: 'string', describe: 'PEM certificate file (with --tls-key: serve gRPC over TLS)' })
      .option('tls-key', { type: 'string', describe: 'PEM private key file' })
      .option('profile', {
        type: 'string',
        choices: PROFILES,
        describe: `which real EPP to answer like (overrides the config file's profile; default ${DEFAULT_PROFILE}): ${PROFILES.map((p) => `${p} = ${PROFILE_MODELS[p]}`).join('; ')}`,
      })
      .option('directives', { type: 'boolean', default: true, describe: 'honour x-eppkit-* request header directives (--no-directives turns them off)' })
      .option('grace-ms', { type: 'number', default: 2000, describe: 'on SIGTERM, how long open streams may finish' })
      .option('role', {
        type: 'string',
        choices: ['epp', 'bbr'] as const,
        describe: "epp: the Endpoint Picker; bbr: body-based routing as upstream BBR (the body's model into X-Gateway-Model-Name) [default: the config's role, epp]",
      })
      .option('transport', {
        type: 'string',
        choices: TRANSPORTS,
        default: 'h2' as Transport,
        describe: 'gRPC transport: h2 (node:http2, the fast one that survives Envoy\'s RST_STREAMs) or grpc-js (@grpc/grpc-js Server)',
      }),
  handler: async (args) => {
    if ((args['tls-cert'] === undefined) !== (args['tls-key'] === undefined)) {
      throw new EppkitError('EPPKIT_USAGE', { reason: '--tls-cert and --tls-key go together' });
    }
    for (const [name, v] of [['--port', args.port], ['--admin-port', args['admin-port']]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 65535) throw new EppkitError('EPPKIT_USAGE', { reason: `${name} must be a port number 0-65535, got ${v}` });
    }
    if (args.endpoints !== undefined && args['endpoints-dns'] !== undefined) {
      throw new EppkitError('EPPKIT_USAGE', { reason: '--endpoints and --endpoints-dns both set the pool: give one' });
    }
    const refresh = args['endpoints-dns-refresh-ms'];
    if (!Number.isInteger(refresh) || refresh < 100) throw new EppkitError('EPPKIT_USAGE', { reason: `--endpoints-dns-refresh-ms must be an integer >= 100, got ${refresh}` });
    const dnsPool = args['endpoints-dns'] !== undefined ? new DnsPool(args['endpoints-dns'], refresh) : undefined;
    const base = args.config ? loadMockEppConfigFile(args.config) : parseMockEppConfig({});
    let config = base;
    if (args.endpoints !== undefined) {
      const list = args.endpoints.split(',').map((s) => s.trim()).filter(Boolean);
      const bad = list.filter((e) => !isEndpoint(e));
      if (bad.length) throw new EppkitError('EPPKIT_USAGE', { reason: `--endpoints: not ip:port: ${bad.join(', ')}` });
      config = parseMockEppConfig({ ...base, endpoints: list }, '--endpoints');
    }
    if (args.profile !== undefined) config = withProfile(config, args.profile);
    if (args.role !== undefined) config = parseMockEppConfig({ ...config, role: args.role }, '--role');
    const logger = createLogger('mock-epp');
    const epp = await new MockEpp(config)
      .withHost(args.host)
      .withPort(args.port)
      .withAdminHost(args['admin-host'] ?? args.host)
      .withAdminPort(args['admin-port'])
      .withAdminToken(args['admin-token'] ?? env().EPPKIT_ADMIN_TOKEN)
      .withTls(args['tls-cert'] && args['tls-key'] ? { cert: args['tls-cert'], key: args['tls-key'] } : undefined)
      .withDirectives(args.directives)
      .withTransport(args.transport)
      .withLogger(logger)
      .start();
    logger.info({ profile: config.profile }, 'fidelity profile');
    await dnsPool?.start(epp, logger);
    process.stdout.write(`grpc listening on ${epp.address}\nadmin listening on ${epp.adminUrl}\n`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        logger.info({ signal: sig }, 'draining');
        dnsPool?.stop();
        epp.stop(args['grace-ms']).then(resolve, resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    logger.flush();
  },
};

export default command;
