import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CONNECTION_SPECIFIC,
  fieldsFromNodeHeaders,
  fieldsFromRaw,
  nodeHeaderObject,
  withoutHopByHop,
} from './fields.js';

describe('fields', () => {
  it('withoutHopByHop drops hop-by-hop fields and the names Connection lists, keeping order', () => {
    const fields = [
      ['connection', 'close, X-Private'],
      ['content-type', 'text/plain'],
      ['x-private', 'secret'],
      ['te', 'trailers'],
      ['proxy-authorization', 'Basic x'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ] as const;
    assert.deepEqual(withoutHopByHop(fields), [
      ['content-type', 'text/plain'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
  });

  it('connection-specific fields are a subset of the hop-by-hop ones', () => {
    const fields = [...CONNECTION_SPECIFIC].map((n) => [n, 'x'] as const);
    assert.deepEqual(withoutHopByHop(fields), []);
  });

  it('reads raw lists (strings or latin1 Buffers) and header objects alike: lowercase, no pseudo-headers', () => {
    assert.deepEqual(fieldsFromRaw(['Content-Type', 'a', ':status', '200', Buffer.from('X-Caf\xe9', 'latin1'), 'v']), [
      ['content-type', 'a'],
      ['x-caf\xe9', 'v'],
    ]);
    assert.deepEqual(fieldsFromNodeHeaders({ ':status': '200', 'set-cookie': ['a', 'b'], age: '3' }), [
      ['set-cookie', 'a'],
      ['set-cookie', 'b'],
      ['age', '3'],
    ]);
  });

  it('nodeHeaderObject repeats names as arrays after the given pseudo-headers, on an object without prototype', () => {
    const into = Object.assign(Object.create(null), { ':status': 200 });
    const o = nodeHeaderObject(
      [
        ['a', '1'],
        ['a', '2'],
        ['a', '3'],
        ['__proto__', 'p'],
      ],
      into,
    );
    assert.equal(o, into);
    assert.deepEqual({ ...o }, { ':status': 200, a: ['1', '2', '3'], ['__proto__']: 'p' });
    assert.equal(Object.getPrototypeOf(o), null);
  });
});
