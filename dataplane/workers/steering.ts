/**
 * Connection-id steering between data-plane workers. The kernel hands each datagram to a worker
 * by its 4-tuple (SO_REUSEPORT), so a client whose address or port changes (NAT rebinding,
 * migration), or any client while the set of workers changes (a worker restarts), can land on a
 * worker that does not hold its connection. Spooky chooses its own connection ids, so it writes
 * the owner into them (QUIC-LB's idea, plaintext): byte 0 is the index of the worker that made
 * the id, bytes 1–19 come from the CSPRNG. A worker that receives a datagram for an id of
 * another worker hands it over (workers/handoff.ts); the index is all the id reveals.
 * Initial packets carry a client-chosen id and stay where the kernel put them.
 */
import { randomFillSync } from 'node:crypto';

/** quiche.MAX_CONN_ID_LEN: the length of every id Spooky issues. */
export const STEERED_ID_LEN = 20;

/** The most workers one byte of the id can name. */
export const MAX_WORKERS = 256;

export interface WorkerIdentity {
  /** This worker's index, 0 … count − 1. */
  readonly self: number;
  readonly count: number;
}

/** A fresh connection id owned by worker `self`. */
export function workerConnectionId(self: number): Uint8Array {
  const id = randomFillSync(Buffer.allocUnsafe(STEERED_ID_LEN));
  id[0] = self;
  return id;
}

/**
 * The worker a destination id belongs to, when it is not this one: null for ids this worker owns
 * and for ids no worker could have issued (another length, an index out of range).
 */
export function otherOwner(dcid: Uint8Array, w: WorkerIdentity): number | null {
  if (dcid.length !== STEERED_ID_LEN) return null;
  const owner = dcid[0] as number;
  return owner === w.self || owner >= w.count ? null : owner;
}
