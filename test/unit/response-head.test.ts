// The fast path's byte-level response head (response-head.ts) against the string version it
// replaced, the oracle here: parse each head into [name, value] strings (latin1), drop hop-by-hop
// fields with headers.ts's withoutHopByHop, pick the reason with reasonPhrase, and write
// `${name}: ${value}` lines as latin1 — what node:http's path sends for the same upstream head
// (its header strings are latin1 too). For every input: the same error code, or the same status,
// framing (Content-Length, chunked), Location and Date findings, and byte-identical output heads.
// Inputs: a fixed corpus and heads generated from pieces that mix valid and hostile ones.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { reasonPhrase, withoutHopByHop } from '../../src/dataplane/proxy/headers.js';
import { encodeResponseHead, headerValue, parseResponseHead, type ResponseHead } from '../../src/dataplane/proxy/response-head.js';

const CR = 13;
const LF = 10;
const TCHAR = new Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".split('').map((c) => c.charCodeAt(0)));

interface RefHead {
  status: number;
  reason: string;
  list: string[];
  contentLength: number;
  chunked: boolean;
  codings: string | undefined;
  location: number;
  close: boolean;
}

/** The string version (fast-path.ts before response-head.ts), kept as the oracle. */
function refParse(b: Buffer, end: number): RefHead | string {
  if (end < 14 || b.toString('latin1', 0, 7) !== 'HTTP/1.' || (b[7] !== 48 && b[7] !== 49) || b[8] !== 32) return 'HPE_INVALID_CONSTANT';
  const d = [b[9]! - 48, b[10]! - 48, b[11]! - 48];
  if (d.some((x) => x < 0 || x > 9)) return 'HPE_INVALID_STATUS';
  const status = d[0]! * 100 + d[1]! * 10 + d[2]!;
  let i = 12;
  if (b[i] !== 32 && b[i] !== CR) return 'HPE_INVALID_STATUS';
  if (b[i] === 32) i++;
  const r0 = i;
  for (; b[i] !== CR; i++) {
    const c = b[i]!;
    if (c === LF || (c < 32 && c !== 9) || c === 0x7f) return 'SWY_UPSTREAM_BARE_CR';
  }
  const reason = b.toString('latin1', r0, i);
  if (b[i + 1] !== LF) return 'SWY_UPSTREAM_BARE_CR';
  i += 2;
  const raw: string[] = [];
  while (i < end - 2) {
    const n0 = i;
    while (TCHAR.has(b[i]!)) i++;
    if (b[i] !== 58 || i === n0) return 'HPE_INVALID_HEADER_TOKEN';
    const name = b.toString('latin1', n0, i);
    i++;
    while (b[i] === 32 || b[i] === 9) i++;
    const v0 = i;
    let v1 = i;
    for (; i < end; i++) {
      const c = b[i]!;
      if (c === CR) break;
      if ((c < 32 && c !== 9) || c === 0x7f) return 'HPE_INVALID_HEADER_TOKEN';
      if (c !== 32 && c !== 9) v1 = i + 1;
    }
    if (b[i + 1] !== LF) return 'HPE_LF_EXPECTED';
    raw.push(name, b.toString('latin1', v0, v1));
    i += 2;
  }
  let contentLength = -1;
  let te: string | undefined;
  for (let k = 0; k < raw.length; k += 2) {
    const n = raw[k]!.toLowerCase();
    if (n === 'content-length') {
      const v = raw[k + 1]!;
      if (!/^\d{1,15}$/.test(v)) return 'HPE_INVALID_CONTENT_LENGTH';
      const len = Number(v);
      if (contentLength !== -1 && contentLength !== len) return 'HPE_UNEXPECTED_CONTENT_LENGTH';
      contentLength = len;
    } else if (n === 'transfer-encoding') {
      te = te === undefined ? raw[k + 1]! : te + ',' + raw[k + 1]!;
    }
  }
  let chunked = false;
  let codings: string | undefined;
  if (te !== undefined) {
    if (contentLength !== -1) return 'HPE_UNEXPECTED_CONTENT_LENGTH';
    // RFC 9112 §6.1/§6.3: chunked only last, once; the codings before it (or all, without it) kept.
    const list = te.split(',').map((c) => c.replace(/^[ \t]+|[ \t]+$/g, '')).filter((c) => c !== '');
    const names = list.map((c) => c.split(';')[0]!.replace(/^[ \t]+|[ \t]+$/g, ''));
    const at = names.findIndex((n) => n.toLowerCase() === 'chunked');
    if (names.some((n) => !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n))) return 'HPE_INVALID_TRANSFER_ENCODING';
    if (at !== -1 && (at !== list.length - 1 || list[at]!.includes(';'))) return 'HPE_INVALID_TRANSFER_ENCODING';
    chunked = at !== -1;
    const rest = chunked ? list.slice(0, -1) : list;
    if (rest.length > 0) codings = rest.join(', ');
  }
  const list = withoutHopByHop(raw);
  const location = list.findIndex((n, k) => k % 2 === 0 && n.toLowerCase() === 'location');
  // RFC 9112 §9.3, §9.6: the upstream closes after this response.
  const tokens = raw.flatMap((n, k) => (k % 2 === 0 && n.toLowerCase() === 'connection' ? raw[k + 1]!.split(',').map((t) => t.trim().toLowerCase()) : []));
  const close = tokens.includes('close') || (b[7] === 48 && !tokens.includes('keep-alive'));
  return { status, reason, list, contentLength, chunked, codings, location, close };
}

function refEncode(h: RefHead, location: string | undefined, tail: string): string {
  let out = `HTTP/1.1 ${h.status} ${reasonPhrase(h.status, h.reason)}\r\n`;
  let hasDate = false;
  for (let i = 0; i < h.list.length; i += 2) {
    if (h.list[i]!.toLowerCase() === 'date') hasDate = true;
    out += `${h.list[i]}: ${i === h.location && location !== undefined ? location : h.list[i + 1]}\r\n`;
  }
  if (!hasDate) out += 'Date: <now>\r\n';
  return out + tail;
}

const TAIL = 'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n';
const DATE_LINE = /Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n(?=Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n$)/;

/** Compare both versions on one head (the bytes up to and including its empty line). */
function check(text: string, rewriteTo?: string): 'ok' | 'error' {
  const b = Buffer.from(text, 'latin1');
  const end = b.indexOf('\r\n\r\n', 0, 'latin1');
  assert.ok(end !== -1, 'a head ends with an empty line');
  const want = refParse(b, end + 4);
  const got = parseResponseHead(b, end + 4);
  if (typeof want === 'string') {
    assert.equal(got, want, JSON.stringify(text));
    return 'error';
  }
  assert.notEqual(typeof got, 'string', `${JSON.stringify(text)}: ${String(got)}`);
  const h = got as ResponseHead;
  assert.equal(h.status, want.status);
  assert.equal(h.contentLength, want.contentLength);
  assert.equal(h.chunked, want.chunked);
  assert.equal(h.codings, want.codings, JSON.stringify(text));
  assert.equal(h.close, want.close, JSON.stringify(text));
  assert.equal(h.location === -1, want.location === -1, JSON.stringify(text));
  if (h.location !== -1) assert.equal(headerValue(b, h, h.location), want.list[want.location + 1]);
  const location = h.location !== -1 ? rewriteTo : undefined;
  const reserve = text.length % 3; // bytes left free for a body, untouched
  const out = encodeResponseHead(b, h, location, Buffer.from(TAIL, 'latin1'), reserve);
  let head = out.subarray(0, out.length - reserve).toString('latin1');
  if (!h.hasDate) {
    assert.match(head, DATE_LINE, JSON.stringify(text));
    head = head.replace(DATE_LINE, 'Date: <now>\r\n');
  }
  assert.equal(head, refEncode(want, location, TAIL), JSON.stringify(text));
  return 'ok';
}

const CORPUS = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nDate: Tue, 01 Dec 2026 02:39:38 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\nX-Keep: 2\r\nConnection: keep-alive, X-Up\r\nKeep-Alive: timeout=9\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nContent-Type: text/plain\r\n\r\n',
  'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n',
  'HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n',
  'HTTP/1.1 299 Custom Thing\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 Caf\xe9\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-Obs: caf\xe9 \xff\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-Space:   padded\t \r\nX-Tab:\tv\r\nX-Empty:\r\nX-Empty2:  \r\nX-Tight:v\r\n\r\n',
  'HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9000/x\r\nlocation: /second\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nConnection: Date\r\nDate: x\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nConnection: close\r\nclose: 1\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nConnection: Close\r\nclose: 1\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: x-a\r\nX-A: 1\r\nX-B: 2\r\n\r\n',
  'HTTP/1.1 200 OK\r\nPROXY-CONNECTION: x\r\nTE: trailers\r\nUpgrade: h2c\r\nHTTP2-Settings: x\r\nKeep-Alive: 1\r\nTrailer: x\r\nContent-Length: 1\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: x-custom;q=1 , GZIP\r\nTransfer-Encoding: Chunked\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1, chunked\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\xa0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX\x01: y\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX : y\r\n\r\n',
  'HTTP/1.1 200 OK\r\n: y\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX: y\rZ: 1\r\n\r\n',
  'HTTP/1.1 200 O\x01K\r\n\r\n',
  'HTTP/1.1 2x0 OK\r\n\r\n',
  'HTTP/1.1 200OK\r\n\r\n',
  'HTTP/2.0 200 OK\r\n\r\n',
  'HTTP/1.2 200 OK\r\n\r\n',
  'http/1.1 200 OK\r\n\r\n',
  'HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n',
  'HTTP/1.1 600 Beyond\r\n\r\n',
  'HTTP/1.1 200 OK\r\n\r\n',
];

test('response head: fixed corpus, byte for byte as the string version', () => {
  let ok = 0;
  for (const text of CORPUS) if (check(text) === 'ok') ok++;
  for (const text of CORPUS) check(text, 'https://hub.example/x?y=1'); // --auto-rewrite's replacement value
  assert.ok(ok >= 20, `valid heads in the corpus: ${ok}`);
});

test('response head: close after this response (Connection: close in any case or list, HTTP/1.0 without keep-alive)', () => {
  const close = (text: string): boolean => {
    assert.equal(check(text), 'ok');
    const b = Buffer.from(text, 'latin1');
    return (parseResponseHead(b, b.length) as ResponseHead).close;
  };
  assert.equal(close('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), false);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n'), false);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), true);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: CLOSE\r\n\r\n'), true);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\n\r\n'), true);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: x-foo ,\tClose ,\r\n\r\n'), true);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n'), true);
  assert.equal(close('HTTP/1.1 200 OK\r\nConnection: closed, x-close\r\n\r\n'), false);
  assert.equal(close('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n'), true);
  assert.equal(close('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n'), false);
  assert.equal(close('HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n\r\n'), true);
});

test('response head: many header lines (more than the reused offset table first holds)', () => {
  let text = 'HTTP/1.1 200 OK\r\n';
  for (let k = 0; k < 300; k++) text += `X-H${k}: ${k % 7 === 0 ? ' v ' : 'v'}${k}\r\n`;
  assert.equal(check(text + 'Connection: X-H5\r\n\r\n'), 'ok');
  assert.equal(check('HTTP/1.1 200 OK\r\nA: 1\r\n\r\n'), 'ok'); // and a small one after it
});

test('response head: generated heads, byte for byte as the string version', () => {
  const names = fc.constantFrom(
    'Content-Type', 'content-length', 'Content-Length', 'Transfer-Encoding', 'transfer-encoding', 'Connection', 'connection',
    'Keep-Alive', 'TE', 'Trailer', 'Upgrade', 'Proxy-Connection', 'HTTP2-Settings', 'Date', 'date', 'Location', 'LOCATION',
    'X-A', 'x-a', 'X-B', 'Set-Cookie', 'close', 'x_~!#', 'Content-Lengthx', 'X A', '', 'X\x00',
  );
  const values = fc.constantFrom(
    '0', '5', '18', '0005', '-1', '1 2', '99999999999999999', 'chunked', 'gzip, chunked', 'chunked, gzip', 'Chunked', ' chunked ',
    'keep-alive', 'Keep-Alive', 'close', 'Close', 'keep-alive, X-A', 'x-a, x-b', 'Date', 'location', 'te, trailer',
    'http://127.0.0.1:9000/x', '/rel', 'caf\xe9', '\xff\x80', 'a\tb', '  lead', 'trail \t', '', ' ', 'a\x01b', 'a\x7fb', 'a\rb',
    'Tue, 01 Dec 2026 02:39:38 GMT', 'text/plain; charset=utf-8',
  );
  const statusLine = fc.constantFrom(
    'HTTP/1.1 200 OK', 'HTTP/1.0 200 OK', 'HTTP/1.1 204 No Content', 'HTTP/1.1 304 Not Modified', 'HTTP/1.1 302 Found',
    'HTTP/1.1 200', 'HTTP/1.1 200 ', 'HTTP/1.1 200 Caf\xe9', 'HTTP/1.1 200 \tx', 'HTTP/1.1 2000 OK', 'HTTP/1.1 20 OK',
    'HTTP/1.1 599 X', 'HTTP/1.1 199 Hint', 'HTTP/1.1 200 O\x7fK', 'HTTP/1.3 200 OK', 'HTTP/1.1 200 OK\n',
  );
  const sep = fc.constantFrom(': ', ':', ':  ', ':\t', ' : ', ':\t ');
  const line = fc.tuple(names, sep, values, fc.constantFrom('', '', '', ' ', '\t')).map(([n, s, v, t]) => `${n}${s}${v}${t}\r\n`);
  let valid = 0;
  let errors = 0;
  fc.assert(
    fc.property(statusLine, fc.array(line, { maxLength: 12 }), fc.boolean(), (sl, lines, rewriteLoc) => {
      if (check(`${sl}\r\n${lines.join('')}\r\n`, rewriteLoc ? 'https://a.example/x' : undefined) === 'ok') valid++;
      else errors++;
    }),
    { numRuns: 20_000, seed: 15 },
  );
  // Both kinds of input were seen in numbers (a generator that only makes errors tests nothing).
  assert.ok(valid > 2000 && errors > 2000, `valid ${valid}, errors ${errors}`);
});
