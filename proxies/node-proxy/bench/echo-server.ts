// The benchmark's backend as its own process (so it does not share an event loop with the
// load client): prints `echo listening on 127.0.0.1:<port>` and serves until SIGTERM.
import { startEchoBackend } from '../../../harness/backends/echo-backend.ts';

const backend = await startEchoBackend('127.0.0.1', { record: false });
process.stdout.write(`echo listening on ${backend.address}\n`);
const stop = (): void => void backend.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
