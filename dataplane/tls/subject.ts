/** A certificate's subject as one line (`CN=client one, O=Spooky`), for the backend header. */
import { X509Certificate } from 'node:crypto';

export function certificateSubject(der: Uint8Array): string | undefined {
  try {
    // Node prints one RDN per line; a value cannot contain a raw newline, so this split is safe.
    const subject = new X509Certificate(der).subject.split('\n').join(', ');
    // Only visible ASCII may go into an HTTP field value unescaped.
    return subject.replace(/[^\x20-\x7e]/g, '?');
  } catch {
    return undefined;
  }
}
