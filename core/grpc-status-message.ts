// grpc-message as the gRPC HTTP/2 spec writes it: "Percent-Encoded", where only bytes outside
// 0x20-0x7E and '%' itself are escaped (as %XX of the UTF-8 bytes). encodeURIComponent also
// escapes ':', ' ', '/', ... and decoders that follow the spec (or decodeURI, as grpc-js)
// leave those escapes in the text the user sees (`x-eppkit-grpc-error%3A UNAVAILABLE`).

/** Percent-encodes a status message for the grpc-message header/trailer. */
export function encodeGrpcMessage(text: string): string {
  // The common case (plain ASCII, no '%') goes through unchanged without a copy.
  if (/^[\x20-\x24\x26-\x7e]*$/.test(text)) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Decodes a grpc-message value. Per the spec a receiver must not fail on a bad encoding: a
 * '%' not followed by two hex digits is kept as it is.
 */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) bytes.push(c);
    else for (const b of Buffer.from(value[i] as string, 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}
