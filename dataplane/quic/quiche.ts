/**
 * The quiche binding shipped by @matrixai/quic. Importing this file (not the package root) keeps
 * the library's JavaScript layer, which Spooky does not use, out of the process.
 */
import { quiche } from '@matrixai/quic/native/index.js';

export type { Config, Connection, Host } from '@matrixai/quic/native/types.js';
export { quiche };
