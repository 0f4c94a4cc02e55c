// Unit tests of the web page's EBML walker (ingest-server/web/ebml.mjs): `node --test tests/browser/`.
// Well-formed fragments as GetMedia writes them, and bad input (truncations, bit flips, garbage,
// absurd sizes) that must end the walk quickly without throwing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fragmentMetadata, mkvTags, readVint, scanTags } from '../../ingest-server/web/ebml.mjs';

const enc = new TextEncoder();
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const idBytes = (id) => {
  const b = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
  return Uint8Array.from(b);
};
const size = (n, width = 8) => {
  const b = new Uint8Array(width);
  let v = n;
  for (let i = width - 1; i >= 0; i--) {
    b[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  b[0] |= 0x80 >> (width - 1);
  return b;
};
const UNKNOWN = Uint8Array.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const el = (id, payload, width = 8) => cat(idBytes(id), size(payload.length, width), payload);
const str = (id, s) => el(id, enc.encode(s), 1 + (enc.encode(s).length > 126 ? 1 : 0));
const simpleTag = (name, value, nested = []) => el(0x67c8, cat(str(0x45a3, name), str(0x4487, value), ...nested));
const tags = (pairs) => el(0x1254c367, el(0x7373, cat(el(0x63c0, new Uint8Array(0)), ...pairs.map(([n, v]) => simpleTag(n, v)))));
const cluster = (unknown) => {
  const body = cat(el(0xe7, Uint8Array.from([1, 2]), 1), el(0xa3, new Uint8Array(300).fill(0x1f)), el(0xa3, new Uint8Array(40)));
  return unknown ? cat(idBytes(0x1f43b675), UNKNOWN, body) : el(0x1f43b675, body);
};
const ebmlHeader = el(0x1a45dfa3, cat(str(0x4282, 'matroska')));
const info = el(0x1549a966, cat(str(0x7ba9, 'Kinesis Video SDK')));

function fragment(n, { unknownCluster = false, user = [['camera', 'front'], ['note', 'café ✓']] } = {}) {
  return cat(
    ebmlHeader,
    idBytes(0x18538067), UNKNOWN,
    info,
    tags([
      ['AWS_KINESISVIDEO_FRAGMENT_NUMBER', `9100000000010000000000000000000000000000000000${n}`],
      ['AWS_KINESISVIDEO_SERVER_TIMESTAMP', '1700000000.250'],
      ['AWS_KINESISVIDEO_PRODUCER_TIMESTAMP', '1700000000.125'],
    ]),
    tags(user),
    cluster(unknownCluster),
    tags([['AWS_KINESISVIDEO_MILLIS_BEHIND_NOW', '12'], ['AWS_KINESISVIDEO_CONTINUATION_TOKEN', `91...${n}`]]),
  );
}

test('reads the tags of a GetMedia fragment, skipping the Cluster', () => {
  const t = mkvTags(fragment(1));
  assert.deepEqual(t.map((x) => x.name), [
    'AWS_KINESISVIDEO_FRAGMENT_NUMBER', 'AWS_KINESISVIDEO_SERVER_TIMESTAMP', 'AWS_KINESISVIDEO_PRODUCER_TIMESTAMP',
    'camera', 'note', 'AWS_KINESISVIDEO_MILLIS_BEHIND_NOW', 'AWS_KINESISVIDEO_CONTINUATION_TOKEN',
  ]);
  const meta = fragmentMetadata(t);
  assert.equal(meta.fragmentNumber, '91000000000100000000000000000000000000000000001');
  assert.equal(meta.producerTimestamp, 1700000000125);
  assert.equal(meta.serverTimestamp, 1700000000250);
  assert.deepEqual(meta.user, [{ name: 'camera', value: 'front' }, { name: 'note', value: 'café ✓' }]);
});

test('reads consecutive fragments, with unknown-size Clusters too', () => {
  const t = mkvTags(cat(fragment(1), fragment(2, { unknownCluster: true }), fragment(3)));
  assert.equal(t.filter((x) => x.name === 'AWS_KINESISVIDEO_FRAGMENT_NUMBER').length, 3);
  assert.equal(t.filter((x) => x.name === 'note').length, 3);
});

test('nested SimpleTags are named parent/child; ArrayBuffer input works', () => {
  const nested = el(0x1254c367, el(0x7373, simpleTag('outer', 'a', [simpleTag('inner', 'b')])));
  const bytes = cat(ebmlHeader, el(0x18538067, nested));
  assert.deepEqual(mkvTags(bytes.buffer).map((x) => `${x.name}=${x.value}`), ['outer=a', 'outer/inner=b']);
});

test('vints: lengths, unknown sizes, zero first byte, past the end', () => {
  assert.deepEqual(readVint(Uint8Array.from([0x81]), 0, 1, false), { value: 1, length: 1, unknown: false });
  assert.deepEqual(readVint(Uint8Array.from([0x40, 0x02]), 0, 2, false), { value: 2, length: 2, unknown: false });
  assert.equal(readVint(Uint8Array.from([0xff]), 0, 1, false).unknown, true);
  assert.equal(readVint(UNKNOWN, 0, 8, false).unknown, true);
  assert.equal(readVint(Uint8Array.from([0x00, 1, 2]), 0, 3, false), null);
  assert.equal(readVint(Uint8Array.from([0x40]), 0, 1, false), null);
  assert.equal(readVint(Uint8Array.from([0x81]), 1, 1, false), null);
  assert.equal(readVint(Uint8Array.from([0x1a, 0x45, 0xdf, 0xa3]), 0, 4, true).value, 0x1a45dfa3);
});

function timed(bytes) {
  const t0 = performance.now();
  let out;
  assert.doesNotThrow(() => {
    out = mkvTags(bytes);
  });
  assert.ok(performance.now() - t0 < 500, `took ${performance.now() - t0} ms on ${bytes.length} bytes`);
  return out;
}

test('every truncation ends the walk with the tags before the cut', () => {
  const whole = cat(fragment(1), fragment(2, { unknownCluster: true }));
  const all = mkvTags(whole).length;
  let previous = 0;
  for (let cut = 0; cut <= whole.length; cut++) {
    const n = timed(whole.subarray(0, cut)).length;
    assert.ok(n <= all);
    assert.ok(n >= previous, `truncating at ${cut} lost tags found at a shorter cut`);
    previous = n;
  }
  assert.equal(previous, all);
});

test('bit flips, garbage and absurd sizes never throw or hang', () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const base = cat(fragment(1), fragment(2, { unknownCluster: true }));
  for (let i = 0; i < 3000; i++) {
    const b = base.slice();
    const flips = 1 + Math.floor(rand() * 8);
    for (let j = 0; j < flips; j++) b[Math.floor(rand() * b.length)] ^= 1 << Math.floor(rand() * 8);
    timed(b);
  }
  for (let i = 0; i < 300; i++) {
    timed(Uint8Array.from({ length: Math.floor(rand() * 4096) }, () => Math.floor(rand() * 256)));
  }
  // A Segment and a Tags claiming 2^56-2 bytes; a SimpleTag nested 10000 deep; 0x00 everywhere.
  timed(cat(ebmlHeader, idBytes(0x18538067), Uint8Array.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), tags([['a', 'b']])));
  timed(cat(ebmlHeader, idBytes(0x18538067), UNKNOWN, idBytes(0x1254c367), Uint8Array.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), tags([['a', 'b']])));
  let deep = simpleTag('leaf', 'x');
  for (let i = 0; i < 10000; i++) deep = el(0x67c8, cat(str(0x45a3, 'n'), deep));
  const deepTags = timed(cat(ebmlHeader, el(0x18538067, el(0x1254c367, el(0x7373, deep)))));
  assert.ok(deepTags.length <= 10);
  timed(new Uint8Array(100000));
});

test('stopAtCluster ends at the first Cluster with the tags written before it', () => {
  const whole = cat(fragment(1), fragment(2));
  const scan = scanTags(whole, { stopAtCluster: true });
  assert.equal(scan.clusterReached, true);
  assert.deepEqual(scan.tags.map((x) => x.name), [
    'AWS_KINESISVIDEO_FRAGMENT_NUMBER', 'AWS_KINESISVIDEO_SERVER_TIMESTAMP', 'AWS_KINESISVIDEO_PRODUCER_TIMESTAMP', 'camera', 'note',
  ]);
  const clusterAt = whole.findIndex((_, i) => whole[i] === 0x1f && whole[i + 1] === 0x43 && whole[i + 2] === 0xb6 && whole[i + 3] === 0x75);
  for (let cut = 0; cut < clusterAt; cut++) assert.equal(scanTags(whole.subarray(0, cut), { stopAtCluster: true }).clusterReached, false);
  assert.equal(scanTags(whole.subarray(0, clusterAt + 4), { stopAtCluster: true }).clusterReached, false, 'an id alone is no header yet');
  assert.equal(scanTags(whole.subarray(0, clusterAt + 12), { stopAtCluster: true }).clusterReached, true);
});
