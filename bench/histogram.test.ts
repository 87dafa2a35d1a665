import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram } from './histogram.js';

describe('Histogram', () => {
  it('reports percentiles within 2% of the exact values', () => {
    const h = new Histogram();
    const values: number[] = [];
    let seed = 42;
    for (let i = 0; i < 20000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const v = 50 + (seed % 200000);
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = values[Math.ceil((p / 100) * values.length) - 1];
      const got = h.percentile(p);
      assert.ok(Math.abs(got - exact) / exact < 0.02, `p${p}: ${got} vs ${exact}`);
    }
    assert.equal(h.percentile(100), values[values.length - 1]);
  });
  it('merges across processes through its sparse form', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 100; i++) a.record(i * 10);
    for (let i = 101; i <= 200; i++) b.record(i * 10);
    const m = Histogram.fromSparse(a.toSparse());
    m.merge(Histogram.fromSparse(b.toSparse()));
    assert.equal(m.total, 200);
    assert.ok(Math.abs(m.percentile(50) - 1000) / 1000 < 0.02);
  });
});
