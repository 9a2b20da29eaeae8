import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { CONNECT_REFUSAL, checkRequest, isValidHost, localAnswerBytes, parserRefusalStatus, type ParserError, type RequestLike } from '../../src/dataplane/proxy/request-rules.js';
import { listen0 } from '../helpers/servers.js';

/** A request as Node's parser hands it over: headers lowercased (first Host kept, TE lines joined ", "). */
function req(line: string, raw: string[] = ['Host', 'a.example']): RequestLike {
  const [method, url, version] = line.split(' ') as [string, string, string];
  const [major, minor] = version.slice(5).split('.').map(Number) as [number, number];
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    const v = raw[i + 1]!;
    if (headers[k] === undefined) headers[k] = v;
    else if (k !== 'host' && k !== 'content-length') headers[k] += ', ' + v;
  }
  return { method, url, httpVersionMajor: major, httpVersionMinor: minor, headers, rawHeaders: raw };
}

test('checkRequest: RFC 9110/9112 rules, table-driven', () => {
  const cases: { desc: string; r: RequestLike; upgrade?: true; status?: number; host?: string | undefined }[] = [
    // accepted
    { desc: 'origin-form, one Host (the hot path)', r: req('GET /x HTTP/1.1'), host: 'a.example' },
    { desc: 'Host name case and port kept as sent', r: req('GET /x HTTP/1.1', ['host', 'A.Example:8000']), host: 'A.Example:8000' },
    { desc: 'RFC 9112 §3.2: an empty Host is valid', r: req('GET /x HTTP/1.1', ['Host', '']), host: '' },
    { desc: 'RFC 9112 §3.2: HTTP/1.0 may omit Host', r: req('GET /x HTTP/1.0', []), host: undefined },
    { desc: 'IPv6 literal Host', r: req('GET /x HTTP/1.1', ['Host', '[::1]:8000']), host: '[::1]:8000' },
    { desc: 'RFC 9112 §3.2.2: absolute-form: the authority replaces Host', r: req('GET http://b.example:81/x?q HTTP/1.1'), host: 'b.example:81' },
    { desc: 'absolute-form without a path', r: req('GET https://b.example HTTP/1.1'), host: 'b.example' },
    { desc: 'absolute-form with a query and no path', r: req('GET http://b.example?q=1 HTTP/1.1'), host: 'b.example' },
    { desc: 'absolute-form, scheme case-insensitive', r: req('GET HTTP://B.example/ HTTP/1.1'), host: 'B.example' },
    { desc: 'absolute-form in HTTP/1.0 without Host', r: req('GET http://b.example/ HTTP/1.0', []), host: 'b.example' },
    { desc: 'absolute-form websocket', r: req('GET http://b.example/ws HTTP/1.1'), upgrade: true, host: 'b.example' },
    { desc: 'RFC 9112 §6.1: TE chunked', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'chunked']), host: 'a' },
    { desc: 'RFC 9112 §7: transfer-coding names are case-insensitive', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'Chunked']), host: 'a' },
    { desc: 'RFC 9110 §5.6.1: empty list elements are ignored', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', ', chunked']), host: 'a' },
    { desc: 'upgrade with Content-Length: 0', r: req('GET /ws HTTP/1.1', ['Host', 'a', 'Content-Length', '0']), upgrade: true, host: 'a' },
    { desc: 'OPTIONS with an origin-form target is an ordinary request', r: req('OPTIONS /x HTTP/1.1'), host: 'a.example' },
    // answered locally
    { desc: 'RFC 9110 §9.3.7: OPTIONS * is answered by the proxy (200)', r: req('OPTIONS * HTTP/1.1'), status: 200 },
    { desc: 'RFC 9110 §15.6.6: major version 2', r: req('GET /x HTTP/2.0'), status: 505 },
    { desc: 'RFC 9110 §15.6.6: "HTTP/0.9" request line', r: req('GET /x HTTP/0.9'), status: 505 },
    { desc: 'RFC 9112 §3.2: two Host lines', r: req('GET /x HTTP/1.1', ['Host', 'a', 'Host', 'b']), status: 400 },
    { desc: 'RFC 9112 §3.2: two Host lines, same value, any case', r: req('GET /x HTTP/1.1', ['Host', 'a', 'HOST', 'a']), status: 400 },
    { desc: 'RFC 9112 §3.2: HTTP/1.1 without Host', r: req('GET /x HTTP/1.1', []), status: 400 },
    { desc: 'RFC 9110 §7.2: port not digits', r: req('GET /x HTTP/1.1', ['Host', 'a.example.com:8000:9']), status: 400 },
    { desc: 'RFC 9110 §7.2: userinfo in Host', r: req('GET /x HTTP/1.1', ['Host', 'a@b']), status: 400 },
    { desc: 'RFC 9110 §7.2: Host with a path', r: req('GET /x HTTP/1.1', ['Host', 'a/b']), status: 400 },
    { desc: 'RFC 9110 §7.2: bad IPv6 literal', r: req('GET /x HTTP/1.1', ['Host', '[zz]']), status: 400 },
    { desc: 'RFC 9112 §3.2: two Host lines with absolute-form', r: req('GET http://b/x HTTP/1.1', ['Host', 'a', 'Host', 'b']), status: 400 },
    { desc: 'RFC 9112 §3.2: a fragment in the target', r: req('GET /x#f HTTP/1.1'), status: 400 },
    { desc: 'RFC 9112 §3.2: a fragment in the query', r: req('GET /x?q#f HTTP/1.1'), status: 400 },
    { desc: 'RFC 9112 §3.2.4: asterisk-form outside OPTIONS', r: req('GET * HTTP/1.1'), status: 400 },
    { desc: 'asterisk-form on an upgrade', r: req('OPTIONS * HTTP/1.1'), upgrade: true, status: 400 },
    { desc: 'RFC 9112 §3.2.3: authority-form outside CONNECT', r: req('GET a.example:80 HTTP/1.1'), status: 400 },
    { desc: 'a target that is no form at all', r: req('GET x HTTP/1.1'), status: 400 },
    { desc: 'absolute-form needs "://"', r: req('GET http:/x HTTP/1.1'), status: 400 },
    { desc: 'absolute-form with another scheme', r: req('GET ftp://a/x HTTP/1.1'), status: 400 },
    { desc: 'RFC 9110 §4.2.4: userinfo in an http URI', r: req('GET http://u@b/x HTTP/1.1'), status: 400 },
    { desc: 'RFC 9110 §4.2.1: empty host in an http URI', r: req('GET http:///x HTTP/1.1'), status: 400 },
    { desc: 'RFC 9110 §4.2.1: port without host', r: req('GET http://:80/x HTTP/1.1'), status: 400 },
    { desc: 'absolute-form with an invalid authority', r: req('GET http://b:1:2/x HTTP/1.1'), status: 400 },
    { desc: 'RFC 9112 §6.1: TE in HTTP/1.0', r: req('POST /x HTTP/1.0', ['Transfer-Encoding', 'chunked']), status: 400 },
    { desc: 'RFC 9112 §6.1: gzip then chunked', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked']), status: 501 },
    { desc: 'RFC 9112 §6.1: gzip and chunked on two lines', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked']), status: 501 },
    { desc: 'RFC 9112 §6.1: chunked twice', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'chunked, chunked']), status: 400 },
    { desc: 'RFC 9112 §6.3: final coding not chunked (identity)', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'identity']), status: 400 },
    { desc: 'RFC 9112 §6.3: final coding not chunked (chunked, gzip)', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'chunked, gzip']), status: 400 },
    { desc: 'RFC 9112 §6.3: "x-chunked" is not chunked', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'x-chunked']), status: 400 },
    { desc: 'RFC 9112 §6.3: "chunked;q=1" is not chunked', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'chunked;q=1']), status: 400 },
    { desc: 'RFC 9112 §6.3: an empty TE', r: req('POST /x HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', '']), status: 400 },
    { desc: 'upgrade with a Content-Length body', r: req('GET /ws HTTP/1.1', ['Host', 'a', 'Content-Length', '5']), upgrade: true, status: 400 },
    { desc: 'upgrade with a chunked body', r: req('GET /ws HTTP/1.1', ['Host', 'a', 'Transfer-Encoding', 'chunked']), upgrade: true, status: 400 },
  ];
  for (const c of cases) {
    const v = checkRequest(c.r, c.upgrade === true);
    if (c.status !== undefined) {
      assert.equal(v.ok, false, c.desc);
      if (!v.ok) {
        assert.equal(v.status, c.status, c.desc);
        assert.ok(v.reason.length > 0, c.desc);
      }
    } else {
      assert.deepEqual(v, { ok: true, host: c.host }, c.desc);
    }
  }
});

test('isValidHost: RFC 9110 §7.2 uri-host [ ":" port ]', () => {
  const valid = ['a', 'a.example.com', 'A-b_c~d.e', 'a.example.com:8000', 'a:', '127.0.0.1:80', '[::1]', '[::1]:80', '[v1.x:y]', 'a%2eb', "a!$&'()*+,;=b", ''];
  const invalid = ['a:b', 'a:80:90', 'a@b', 'a b', 'a/b', 'a?b', 'a#b', 'a%2', 'a%zz', '[::1', '[::1]x', '[zz]', 'é', 'a\tb', 'a"b', '[]', 'a:8 0'];
  for (const h of valid) assert.equal(isValidHost(h), true, JSON.stringify(h));
  for (const h of invalid) assert.equal(isValidHost(h), false, JSON.stringify(h));
});

// parserRefusalStatus against Node's own parser: each input is sent to a node:http server (as the
// proxy's: requireHostHeader off) and the status is computed from the 'clientError' it gets, so
// llhttp's stop positions are checked on the Node version that runs the test. `pieces` are
// written one at a time, each once the server side has read the previous ones (a barrier on the
// server socket's bytesRead): one read per piece.
test('parserRefusalStatus: 505 for an unsupported major version, 414 for a request line past the limit, else as Node', async () => {
  const errs: { err: Error & { rawPacket?: Buffer }; first: boolean }[] = [];
  const conn: { sock?: net.Socket } = {};
  const server = http.createServer({ requireHostHeader: false }, (_req, res) => res.end());
  server.on('connection', (s: net.Socket) => (conn.sock = s));
  const serverRead = (): number => conn.sock?.bytesRead ?? 0;
  server.on('clientError', (err: Error & { rawPacket?: Buffer }, s: net.Socket) => {
    errs.push({ err, first: Buffer.isBuffer(err.rawPacket) && s.bytesRead === err.rawPacket.length });
    s.destroy();
  });
  const port = await listen0(server);
  const long = (n: number): string => '/' + 'p'.repeat(n - 1);
  const statusFor = async (pieces: string[]): Promise<number | undefined> => {
    errs.length = 0;
    delete conn.sock;
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    await once(c, 'connect');
    let sent = 0;
    for (const p of pieces) {
      sent += p.length;
      await new Promise<void>((r) => c.write(p, 'latin1', () => r()));
      const deadline = Date.now() + 5000;
      while (errs.length === 0 && serverRead() < sent) {
        assert.ok(Date.now() < deadline, 'the server reads what was sent');
        await new Promise((r) => setImmediate(r));
      }
      if (errs.length > 0) break;
    }
    if (errs.length === 0) await Promise.race([once(c, 'close'), new Promise((r) => setTimeout(r, 2000))]);
    c.destroy();
    const e = errs[0];
    return e && parserRefusalStatus(e.err as ParserError, e.first);
  };
  const H = 'Host: a\r\n\r\n';
  const cases: [string, string[], number][] = [
    ['RFC 9110 §15.6.6: HTTP/3.0', [`GET /x HTTP/3.0\r\n${H}`], 505],
    ['HTTP/3.1', [`GET /x HTTP/3.1\r\n${H}`], 505],
    ['HTTP/2.1 (only 2.0 gets through llhttp)', [`GET /x HTTP/2.1\r\n${H}`], 505],
    ['HTTP/0.8', [`GET /x HTTP/0.8\r\n${H}`], 505],
    ['HTTP/9.9 with a bare LF', [`GET /x HTTP/9.9\n${H}`], 505],
    ['RFC 9112 §2.3: HTTP/1.2 (major 1 is supported; Node refuses the minor): 400', [`GET /x HTTP/1.2\r\n${H}`], 400],
    ['junk after a valid version', [`GET /x HTTP/1.1x\r\n${H}`], 400],
    ['junk after 2.0', [`GET /x HTTP/2.0x\r\n${H}`], 400],
    ['junk after 3.0', [`GET /x HTTP/3.0x\r\n${H}`], 400],
    ['two-digit major (not HTTP-version syntax)', [`GET /x HTTP/10.0\r\n${H}`], 400],
    ['a letter as major', [`GET /x HTTP/x.1\r\n${H}`], 400],
    ['version split across reads before its digits are both seen: Node\'s 400', ['GET /x HTTP/3', `.0\r\n${H}`], 400],
    ['RFC 9112 §3: a 17000-byte target in one read: 414', [`GET ${long(17000)} HTTP/1.1\r\n${H}`], 414],
    ['a 40000-byte target: 414', [`GET ${long(40000)} HTTP/1.1\r\n${H}`], 414],
    ['a long target in two reads, the second ending after it: 414', [`GET ${long(10000)}`, `${'q'.repeat(7000)} HTTP/1.1\r\n${H}`], 414],
    ['a long target whose first read ends inside it: 414', [`GET ${long(17000)}`, ` HTTP/1.1\r\n${H}`], 414],
    ['a long target behind a keep-alive request in the same read: 414', [`GET /a HTTP/1.1\r\n${H}GET ${long(17000)} HTTP/1.1\r\n${H}`], 414],
    ['a long target whose limit is crossed in a later read that ends inside it: 431 (the line start is not in that read)', [`GET ${long(10000)}`, 'q'.repeat(7000), ` HTTP/1.1\r\n${H}`], 431],
    ['headers past the limit: 431', [`GET /x HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(17000)}\r\n\r\n`], 431],
    ['a header value past the limit with trailing spaces: 431', [`GET /x HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(17000)}   \r\n\r\n`], 431],
    ['a header value with spaces crossing the limit in a later read: 431', [`GET /x HTTP/1.1\r\nHost: a\r\nX: ${'v w'.repeat(3000)}`, 'v w'.repeat(3000)], 431],
    ['a header value crossing the limit in the first read, ending inside it: 431', [`GET /x HTTP/1.1\r\nHost: a\r\nX: ${'v w'.repeat(6000)}`], 431],
    ['a header name past the limit: 431', [`GET /x HTTP/1.1\r\nHost: a\r\nX${'n'.repeat(17000)}: 1\r\n\r\n`], 431],
    ['many headers past the limit: 431', [`GET /x HTTP/1.1\r\nHost: a\r\n${'X-A: 0123456789\r\n'.repeat(2000)}\r\n`], 431],
    ['a malformed request: 400', [`GET /x HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n`], 400],
  ];
  try {
    for (const [desc, pieces, want] of cases) assert.equal(await statusFor(pieces), want, desc);
  } finally {
    server.close();
  }
  assert.equal(parserRefusalStatus({ code: 'HPE_CHUNK_EXTENSIONS_OVERFLOW' }, false), 413);
  assert.equal(parserRefusalStatus({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }, false), 408);
  assert.equal(parserRefusalStatus({ code: 'HPE_HEADER_OVERFLOW' }, false), 431);
  assert.equal(parserRefusalStatus({ code: 'HPE_INVALID_VERSION' }, false), 400);
});

test('localAnswerBytes: the refusal sendLocalAnswer writes, as raw bytes (CONNECT: 501, Connection: close)', () => {
  const b = localAnswerBytes(CONNECT_REFUSAL, 'Tue, 01 Dec 2026 00:00:00 GMT');
  const body = 'Not Implemented: CONNECT not implemented (this proxy opens no tunnels)\n';
  assert.equal(
    b,
    'HTTP/1.1 501 Not Implemented\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
});
