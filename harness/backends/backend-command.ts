// `eppkit backend --listen 127.0.0.2:0 --name pod-a`: one echo model server, by hand or for a
// container driver. Prints `listening on http://<ip:port>` when ready; SIGTERM/SIGINT stop it.
import type { CommandModule } from 'yargs';
import { EppkitError } from '../../core/errors.ts';
import { DEFAULT_MAX_RECEIVED, EchoBackend } from './echo-backend.ts';

interface Args {
  listen: string;
  name: string;
  'latency-ms': number;
  'error-status'?: number;
  'max-received': number;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = listen.match(/^\[([0-9a-fA-F:.]+)\]:(\d+)$/) ?? listen.match(/^([^:\s]+):(\d+)$/);
  if (!m || Number(m[2]) > 65535) throw new EppkitError('EPPKIT_USAGE', { reason: `--listen must be host:port or [v6]:port (got "${listen}")` });
  return { host: m[1] ?? '', port: Number(m[2]) };
}

const command: CommandModule<object, Args> = {
  command: 'backend',
  describe: 'Run one echo model server (OpenAI-style, echoes what it received)',
  builder: (y) =>
    y
      .option('listen', { type: 'string', default: '127.0.0.2:0', describe: 'host:port ([::1]:0 for IPv6); port 0 = a free one' })
      .option('name', { type: 'string', default: 'pod-a', describe: 'identity reported in x-inference-pod and the echo' })
      .option('latency-ms', { type: 'number', default: 0, describe: 'delay every answer by this much' })
      .option('error-status', { type: 'number', describe: 'answer every model request with this status' })
      .option('max-received', { type: 'number', default: DEFAULT_MAX_RECEIVED, describe: 'how many of the latest requests it keeps in memory (a ring; 0 = none)' }) as never,
  handler: async (argv) => {
    const { host, port } = parseListen(argv.listen);
    if (!Number.isInteger(argv['latency-ms']) || argv['latency-ms'] < 0) throw new EppkitError('EPPKIT_USAGE', { reason: '--latency-ms must be a non-negative integer' });
    const es = argv['error-status'];
    if (es !== undefined && (!Number.isInteger(es) || es < 100 || es > 599)) throw new EppkitError('EPPKIT_USAGE', { reason: '--error-status must be an HTTP status (100-599)' });
    const max = argv['max-received'];
    if (!Number.isInteger(max) || max < 0) throw new EppkitError('EPPKIT_USAGE', { reason: '--max-received must be a non-negative integer' });
    const backend = await new EchoBackend(argv.name).withHost(host).withPort(port).withLatency(argv['latency-ms']).withErrorStatus(es).withMaxReceived(max).start();
    process.stdout.write(`listening on http://${backend.address}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await backend.stop();
  },
};

export default command;
