// Profiling baseline, not part of the mock: the mock's ExtProcSession on the mock's transport
// (grpc-h2-server.ts) with nothing else of the mock around it (no CLI, no admin API, no health
// service), to tell the session's cost per stream from the rest of the process's.
//   node mock-epp/load/baselines/session-only-server.ts
import { silentLogger } from '../../../core/logger.ts';
import { EXT_PROC_METHOD_PATH } from '../../../core/proto.ts';
import { decodeProcessingRequest, encodeProcessingResponse } from '../../ext-proc-codec.ts';
import { ExtProcSession, type ConfigState } from '../../ext-proc-session.ts';
import { GrpcH2Server } from '../../grpc-h2-server.ts';
import { Journal } from '../../journal.ts';
import { parseMockEppConfig } from '../../mock-epp-config.ts';
import { MockEppMetrics } from '../../mock-epp-metrics.ts';
import { createPicker } from '../../pickers.ts';
import { compileRules } from '../../rules.ts';

const config = parseMockEppConfig({ endpoints: ['127.0.0.2:8000', '127.0.0.3:8000', '127.0.0.4:8000', '127.0.0.5:8000'] });
const state: ConfigState = { config, rules: compileRules(config.rules), picker: createPicker(config.picker), needsModel: false, needsBody: false, ordinal: 0 };
const journal = new Journal(config.journal.maxEntries);
const metrics = new MockEppMetrics();
let nextId = 0;
const env = { state, journal, metrics, logger: silentLogger, nextId: () => ++nextId, onClosed: () => {} };
const server = new GrpcH2Server({ maxMessageBytes: 16 * 1024 * 1024 });
server.addMethod(EXT_PROC_METHOD_PATH, {
  codec: { serialize: encodeProcessingResponse, deserialize: decodeProcessingRequest, serializeRes: encodeProcessingResponse },
  handle: (call) => new ExtProcSession(call as never, env),
});
const port = await server.listen('127.0.0.1', 0);
process.stdout.write(`grpc listening on 127.0.0.1:${port}\n`);
process.on('SIGTERM', () => process.exit(0));
