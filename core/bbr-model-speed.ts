// CPU cost of node-proxy's model scan alone (core/bbr-model.ts), for OpenAI chat bodies with
// the model last and first. Not a test: timings are printed, never asserted.
//   node core/bbr-model-speed.ts
import { chatBody } from '../harness/runner/request-body.ts';
import { scanModel } from './bbr-model.ts';

for (const size of [1024, 64 * 1024, 1024 * 1024]) {
  for (const last of [true, false]) {
    const body = chatBody(size, 'llama-3-8b', last);
    const iters = Math.max(200, Math.min(200_000, Math.floor((64 * 1024 * 1024) / size)));
    for (let i = 0; i < Math.min(iters, 20_000); i++) scanModel(body); // warm the JIT (tiering)
    const t = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) scanModel(body);
    const ns = Number(process.hrtime.bigint() - t) / iters;
    console.log(`${String(size).padStart(8)} B, model ${last ? 'last ' : 'first'}: ${(ns / 1000).toFixed(2).padStart(10)} µs per body, ${((size / ns) * 1000).toFixed(0).padStart(6)} MB/s (${iters} iterations)`);
  }
}
