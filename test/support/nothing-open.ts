// The end of a node-proxy test: nothing left open (requests, EPP streams, upstream calls), waited
// for as a condition, since the last stream closes a moment after the client has its answer.
import type { StartedNodeProxy } from '../../proxies/node-proxy/node-proxy.ts';
import { eventually } from './eventually.ts';

export async function nothingOpen(p: StartedNodeProxy): Promise<void> {
  await eventually(
    () => p.metrics.data.active.requests === 0 && p.metrics.data.active.eppStreams === 0 && p.metrics.data.active.upstreamRequests === 0,
    `nothing open (active ${JSON.stringify(p.metrics.data.active)})`,
  );
}
