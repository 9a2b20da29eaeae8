// The raw HTTP/1.1 response parser shared by the hostile-request and hostile-upstream tests: it
// must tell a well-framed response from a mis-framed, truncated or extra one, or those tests could
// not fail.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { header, parseResponses, takeRequestBody } from '../helpers/raw-http.js';

interface ParseCase {
  desc: string;
  bytes: string;
  closed?: boolean;
  headRequest?: boolean;
  /** [status, complete, body] of each response, in order. */
  responses: [number, boolean, string][];
  /** The bytes left after them. */
  rest: string;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const CHUNKED_HEAD = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';

const cases: ParseCase[] = [
  { desc: 'RFC 9112 §6.2: one response framed by Content-Length', bytes: OK, responses: [[200, true, 'ok']], rest: '' },
  { desc: 'RFC 9112 §7.1: one chunked response (extension and trailer)', bytes: CHUNKED_HEAD + '5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n', responses: [[200, true, 'hello']], rest: '' },
  {
    desc: 'Transfer-Encoding: chunked over a body that is not chunked: mis-framed, not a response',
    bytes: CHUNKED_HEAD + 'hello world\r\n',
    responses: [],
    rest: CHUNKED_HEAD + 'hello world\r\n',
  },
  { desc: 'chunk data longer than its size (no CRLF after it): mis-framed', bytes: CHUNKED_HEAD + '1\r\nab\r\n0\r\n\r\n', responses: [], rest: CHUNKED_HEAD + '1\r\nab\r\n0\r\n\r\n' },
  { desc: 'RFC 9112 §6.3: codings before a final chunked: chunked framing, the coded bytes as the body', bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n', responses: [[200, true, 'xy']], rest: '' },
  { desc: 'RFC 9112 §6.1: chunked not last: mis-framed', bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', responses: [], rest: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n' },
  { desc: 'RFC 9112 §6.1: a transfer coding other than chunked: mis-framed', bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx', responses: [], rest: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx' },
  { desc: 'RFC 9112 §6.3: two Content-Length fields: mis-framed', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok', responses: [], rest: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok' },
  { desc: 'chunked response cut before its last chunk: incomplete, even once closed', bytes: CHUNKED_HEAD + '7\r\npartial\r\n', closed: true, responses: [[200, false, '7\r\npartial\r\n']], rest: '' },
  { desc: 'two responses in one buffer: both, in order', bytes: OK + CHUNKED_HEAD + '5\r\nhello\r\n0\r\n\r\n', responses: [[200, true, 'ok'], [200, true, 'hello']], rest: '' },
  { desc: 'a response, then bytes that are no response: the bytes are left over', bytes: OK + 'garbage', responses: [[200, true, 'ok']], rest: 'garbage' },
  { desc: 'truncated Content-Length body: incomplete, holding what came', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', responses: [[200, false, 'abc']], rest: '' },
  { desc: 'truncated Content-Length body, connection closed: still incomplete', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', closed: true, responses: [[200, false, 'abc']], rest: '' },
  {
    desc: 'RFC 9110 §9.3.2: HEAD response announcing 5 bytes, none follow: complete, no body; the next response parses',
    bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' + 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    headRequest: true,
    responses: [[200, true, ''], [200, true, '']],
    rest: '',
  },
  { desc: 'the same head to a GET: waits for the 5 bytes', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', responses: [[200, false, '']], rest: '' },
  { desc: 'RFC 9112 §6.3: no framing, connection open: incomplete', bytes: 'HTTP/1.1 403 Forbidden\r\n\r\nnope', responses: [[403, false, 'nope']], rest: '' },
  { desc: 'RFC 9112 §6.3: no framing, connection closed: the body runs to the close', bytes: 'HTTP/1.1 403 Forbidden\r\n\r\nnope', closed: true, responses: [[403, true, 'nope']], rest: '' },
  { desc: 'RFC 9110 §15.2: 100 Continue, then the final response', bytes: 'HTTP/1.1 100 Continue\r\n\r\n' + OK, responses: [[100, true, ''], [200, true, 'ok']], rest: '' },
  { desc: '204 and 304 have no body whatever their headers say', bytes: 'HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n', responses: [[204, true, ''], [304, true, '']], rest: '' },
  { desc: '101: what follows belongs to the new protocol', bytes: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n' + OK, responses: [[101, true, '']], rest: OK },
  { desc: 'RFC 9112 §2.2: bare CR in the status line: not a response', bytes: 'HTTP/1.1 200 OK\rX-Injected: 1\r\nContent-Length: 2\r\n\r\nok', responses: [], rest: 'HTTP/1.1 200 OK\rX-Injected: 1\r\nContent-Length: 2\r\n\r\nok' },
  { desc: 'head not complete yet: nothing parsed', bytes: 'HTTP/1.1 200 OK\r\nContent-Le', responses: [], rest: 'HTTP/1.1 200 OK\r\nContent-Le' },
];

for (const c of cases) {
  test(`parseResponses: ${c.desc}`, () => {
    const { responses, rest } = parseResponses(Buffer.from(c.bytes, 'latin1'), { closed: c.closed ?? false, headRequest: c.headRequest });
    assert.deepEqual(
      responses.map((r) => [r.status, r.complete, r.body.toString('latin1')]),
      c.responses,
    );
    assert.equal(rest.toString('latin1'), c.rest);
    // Every listed byte is accounted for exactly once.
    assert.equal(Buffer.concat([...responses.map((r) => r.raw), rest]).toString('latin1'), c.bytes);
  });
}

test('parseResponses: status line, reason, header lines and fields as received', () => {
  const { responses } = parseResponses(Buffer.from('HTTP/1.1 404 Nicht \xff\r\nX-A:  1 \r\nx-a: 2\r\nContent-Length: 0\r\n\r\n', 'latin1'), { closed: false });
  assert.equal(responses.length, 1);
  const r = responses[0]!;
  assert.deepEqual([r.status, r.reason, r.line], [404, 'Nicht \xff', 'HTTP/1.1 404 Nicht \xff']);
  assert.deepEqual(r.headers, ['X-A:  1 ', 'x-a: 2', 'Content-Length: 0']);
  assert.deepEqual(r.fields, [['x-a', '1'], ['x-a', '2'], ['content-length', '0']]);
  assert.equal(header(r, 'x-a'), '1');
  assert.equal(header(r, 'x-b'), undefined);
});

test('takeRequestBody: Content-Length, chunked, none, incomplete, mis-framed', () => {
  const b = (s: string): Buffer => Buffer.from(s, 'latin1');
  const take = (headers: string[], s: string): unknown => {
    const r = takeRequestBody(headers, b(s));
    return typeof r === 'string' ? r : [r.body.toString('latin1'), r.used];
  };
  assert.deepEqual(take(['Content-Length: 5'], 'helloGET'), ['hello', 5]);
  assert.deepEqual(take(['Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\nGET'), ['hello', 15]);
  assert.deepEqual(take(['Host: a'], 'GET'), ['', 0]);
  assert.equal(take(['Content-Length: 5'], 'hel'), 'incomplete');
  assert.equal(take(['Transfer-Encoding: chunked'], '5\r\nhello\r\n'), 'incomplete');
  assert.equal(take(['Transfer-Encoding: chunked'], 'hello\r\n'), 'invalid');
  assert.equal(take(['Content-Length: 5', 'Content-Length: 6'], 'hello!'), 'invalid');
});
