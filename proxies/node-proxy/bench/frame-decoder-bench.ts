// The EPP answer decoder before and after core/grpc-frame.ts, one message split in 16 KiB chunks
// (HTTP/2 DATA frames): the old one concatenated its buffer on every chunk (quadratic).
//   node proxies/node-proxy/bench/frame-decoder-bench.ts
import { encodeGrpcFrame, GrpcFrameDecoder } from '../../../core/grpc-frame.ts';
function oldDecode(chunks: Buffer[]): number {
  let buf: Buffer = Buffer.alloc(0); let n = 0;
  for (const d of chunks) {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    while (buf.length >= 5) { const len = buf.readUInt32BE(1); if (buf.length < 5 + len) break; n += buf.subarray(5, 5 + len).length; buf = buf.subarray(5 + len); }
  }
  return n;
}
function newDecode(chunks: Buffer[]): number {
  const d = new GrpcFrameDecoder({ maxMessageBytes: 1 << 30 }); let n = 0;
  for (const c of chunks) { d.push(c); for (let f = d.next(); f; f = d.next()) if (f.kind === 'message') n += f.message.length; }
  return n;
}
for (const mib of [1, 4, 16]) {
  const frame = encodeGrpcFrame(Buffer.alloc(mib * 1024 * 1024, 7));
  const chunks: Buffer[] = [];
  for (let o = 0; o < frame.length; o += 16384) chunks.push(frame.subarray(o, o + 16384));
  for (const [name, fn] of [['concat per chunk (old node-proxy)', oldDecode], ['GrpcFrameDecoder', newDecode]] as const) {
    const t0 = process.cpuUsage(); const n = fn(chunks); const t = process.cpuUsage(t0);
    console.log(`${mib} MiB in ${chunks.length} chunks: ${name}: ${((t.user + t.system) / 1000).toFixed(1)} ms CPU (${n} bytes)`);
  }
}
