/**
 * HTTP/3 (RFC 9114 §8.1) and QPACK (RFC 9204 §6) application error codes, and the one error type
 * the codec throws. Callers decide the scope: a connection error closes the QUIC connection with
 * `code`; a stream error resets just that stream.
 */
export const H3 = {
  NO_ERROR: 0x100,
  GENERAL_PROTOCOL_ERROR: 0x101,
  INTERNAL_ERROR: 0x102,
  STREAM_CREATION_ERROR: 0x103,
  CLOSED_CRITICAL_STREAM: 0x104,
  FRAME_UNEXPECTED: 0x105,
  FRAME_ERROR: 0x106,
  EXCESSIVE_LOAD: 0x107,
  ID_ERROR: 0x108,
  SETTINGS_ERROR: 0x109,
  MISSING_SETTINGS: 0x10a,
  REQUEST_REJECTED: 0x10b,
  REQUEST_CANCELLED: 0x10c,
  REQUEST_INCOMPLETE: 0x10d,
  MESSAGE_ERROR: 0x10e,
  CONNECT_ERROR: 0x10f,
  VERSION_FALLBACK: 0x110,
  QPACK_DECOMPRESSION_FAILED: 0x200,
  QPACK_ENCODER_STREAM_ERROR: 0x201,
  QPACK_DECODER_STREAM_ERROR: 0x202,
} as const;

export type H3ErrorCode = (typeof H3)[keyof typeof H3];

const NAMES = new Map<number, string>(Object.entries(H3).map(([k, v]) => [v, `H3_${k}`]));

/** Name of an HTTP/3 or QPACK error code, for logs (`H3_FRAME_UNEXPECTED`). */
export function h3ErrorName(code: number): string {
  const name = NAMES.get(code);
  if (!name) return `0x${code.toString(16)}`;
  return name.startsWith('H3_QPACK_') ? name.slice(3) : name;
}

/**
 * A protocol violation. `scope: 'connection'` closes the whole connection with `code`;
 * `scope: 'stream'` resets only the stream it happened on.
 */
export class H3Error extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly scope: 'connection' | 'stream' = 'connection',
  ) {
    super(message);
    this.name = 'H3Error';
  }
}

/** The field section exceeds the advertised SETTINGS_MAX_FIELD_SECTION_SIZE (answer 431). */
export class FieldSectionTooLarge extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`field section of ${size} bytes exceeds the limit of ${limit}`);
    this.name = 'FieldSectionTooLarge';
  }
}
