/**
 * The endpoint's connection table: which connection a datagram's destination connection id
 * belongs to, and the open connections in order of arrival. A server connection is known by the
 * id it chose and, until the client learns it, by the client's original destination id; both
 * lead to the same connection and both go when it is retired.
 */
import { connectionKey } from './classify.js';

/** What the table needs of a connection: the list it keeps of the keys it is registered under. */
export interface TableEntry {
  /** Connection ids (latin1 keys) under which the table knows this connection. */
  readonly ids: string[];
}

export class ConnectionTable<C extends TableEntry> {
  private readonly byId = new Map<string, C>();
  private readonly open = new Set<C>();

  /** Registers `conn` under each id (and as open, once). */
  register(conn: C, ...ids: Uint8Array[]): void {
    for (const id of ids) {
      const key = connectionKey(id);
      conn.ids.push(key);
      this.byId.set(key, conn);
    }
    this.open.add(conn);
  }

  /** `id` no longer leads to `conn` (the peer retired it); its other ids stay. */
  unregister(conn: C, id: Uint8Array): void {
    const key = connectionKey(id);
    if (this.byId.get(key) === conn) this.byId.delete(key);
    const i = conn.ids.indexOf(key);
    if (i >= 0) conn.ids.splice(i, 1);
  }

  /** Whether a connection id (as `connectionKey` spells it) is known. */
  has(key: string): boolean {
    return this.byId.has(key);
  }

  get(key: string): C | undefined {
    return this.byId.get(key);
  }

  /** The connection is registered and not retired yet. */
  contains(conn: C): boolean {
    return this.open.has(conn);
  }

  /**
   * Retires a connection: it leaves the open set, and each of its ids that still leads to it is
   * forgotten (an id some newer connection registered meanwhile stays with that one).
   */
  retire(conn: C): void {
    for (const key of conn.ids) if (this.byId.get(key) === conn) this.byId.delete(key);
    this.open.delete(conn);
  }

  /** Open connections, oldest first. */
  values(): IterableIterator<C> {
    return this.open.values();
  }

  get size(): number {
    return this.open.size;
  }
}
