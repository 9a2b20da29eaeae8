// The hostile-request corpus (test/integration/hostile-requests.test.ts runs it against a spawned
// Switchyard). Each case: the exact bytes sent on a fresh connection, the statuses of the responses
// that must come back (each completely framed, nothing after them; [] = a clean close without
// a response), and what the recording upstreams must have received (nothing, unless listed).
//
// `desc` names the RFC 9110/9112 rule (or the failure mode) and, where CHP 5.3 answers otherwise
// (checked by running CHP 5.3 with the same bytes), what CHP does.

export interface UpstreamExpectation {
  /** The recorder that must get it. */
  readonly to: string;
  /** The exact request line. */
  readonly line: string;
  /** "name: value" (lowercase name): that header appears exactly once, with that value. */
  readonly has?: readonly string[];
  /** Lowercase header names that must be absent. */
  readonly lacks?: readonly string[];
  /** The exact body (decoded), latin1. */
  readonly body?: string;
  /** Strings the body as framed on the wire must not contain (e.g. chunk extensions). */
  readonly framedLacks?: readonly string[];
}

export interface HostileCase {
  readonly desc: string;
  /** Exact bytes (latin1). */
  readonly send: string;
  /** Statuses of the responses, in order; [] = the connection is closed with no response. */
  readonly responses: readonly number[];
  /** Every request the upstreams receive, in order; [] = none. */
  readonly upstream: readonly UpstreamExpectation[];
  /** Half-close after sending (a client that sends no more). */
  readonly halfClose?: boolean;
}

export interface CaseTable {
  readonly name: string;
  /** Extra Switchyard flags. */
  readonly flags: readonly string[];
  /** Route path -> recorder name ("" = --default-target). */
  readonly routes: Readonly<Record<string, string>>;
  readonly cases: readonly HostileCase[];
}

const H = 'Host: a.example\r\n';
const long = (n: number): string => '/' + 'p'.repeat(n - 1);
const INNER = 'GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n';

/** Framing and smuggling, request line, header syntax: every request goes to the default target. */
export const framing: CaseTable = {
  name: 'framing',
  flags: [],
  routes: { '': 'up' },
  cases: [
    {
      desc: 'baseline: origin-form GET with one Host (RFC 9112 §3.2) is forwarded as is',
      send: `GET /x?q=1 HTTP/1.1\r\n${H}\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x?q=1 HTTP/1.1', has: ['host: a.example'] }],
    },
    {
      desc: 'RFC 9112 §6.3: Content-Length and Transfer-Encoding together (smuggling): Node refuses (400); the upstream never sees the smuggled second request',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3: Transfer-Encoding before Content-Length: refused the same (400)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶5: two Content-Length lines with the same value: Node refuses (400; the RFC allows either)',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶5: conflicting Content-Length (5 and 6): unrecoverable framing error, 400',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶5: Content-Length as a list "5, 5": Node refuses (400)',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §8.6: Content-Length = 1*DIGIT, "+3" is invalid: 400',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.2: a valid Content-Length body is forwarded byte for byte with its length',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`,
      responses: [200],
      upstream: [{ to: 'up', line: 'POST /x HTTP/1.1', has: ['content-length: 5'], body: 'hello' }],
    },
    {
      desc: 'RFC 9112 §6.1: "gzip, chunked" (a coding the proxy does not implement) is 501, never forwarded as plain content (CHP forwards it, TE header and all, and answers 503)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [501],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.1: the same codings on two TE lines ("gzip" then "chunked"): 501 (CHP forwards them, 503)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [501],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.1: chunked applied twice ("chunked, chunked"): Node refuses (400)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.1: chunked twice on two TE lines: Node refuses (400)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶4: TE "identity" (final coding not chunked) in a request: MUST 400 and close (before anything goes upstream; Node alone refuses it once the body starts)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶4: obfuscated TE "x-chunked" (final coding not chunked): 400',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: x-chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶4: obfuscated TE "chunked" followed by SP HTAB: Node refuses (400)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked \t\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.3 ¶4, §7: chunked has no parameters; obfuscated TE "chunked;q=1" is not chunked: 400',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked;q=1\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §7: transfer-coding names are case-insensitive: "Chunked" is chunked; the decoded body is forwarded, framed by the proxy (chunked, or Content-Length when the whole body is in already)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'POST /x HTTP/1.1', body: 'abc' }],
    },
    {
      desc: 'RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request: the framing is faulty, 400 and close (CHP forwards it)',
      send: `POST /x HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.1: HTTP/1.0 + keep-alive + TE chunked with a request smuggled after the last chunk: 400, the smuggled request is never handled (CHP forwards both)',
      send: `POST /x HTTP/1.0\r\n${H}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §7.1.1: chunk extensions are parsed and dropped (the proxy re-frames the body); never mis-framed',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;ext=1;name="v a"\r\nabc\r\n0;last\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'POST /x HTTP/1.1', body: 'abc', framedLacks: ['ext', 'name', 'last'] }],
    },
    {
      desc: 'RFC 9112 §7.1: chunk size "-3" is not HEXDIG: 400 (the request may have started upstream, but never completes there)',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §7.1: chunk size "0x3": 400',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §7.1: chunk size overflowing 64 bits: 400',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §7.1: more chunk data than its size says: 400',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §6.2: a request inside a Content-Length body is body bytes: the upstream gets one request with exactly that body',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: ${INNER.length}\r\n\r\n${INNER}`,
      responses: [200],
      upstream: [{ to: 'up', line: 'POST /x HTTP/1.1', has: [`content-length: ${INNER.length}`], body: INNER }],
    },
    {
      desc: 'RFC 9112 §9.3.2: two pipelined requests: two responses, in order',
      send: `GET /one HTTP/1.1\r\n${H}\r\nGET /two HTTP/1.1\r\n${H}\r\n`,
      responses: [200, 200],
      upstream: [
        { to: 'up', line: 'GET /one HTTP/1.1' },
        { to: 'up', line: 'GET /two HTTP/1.1' },
      ],
    },
    {
      desc: 'RFC 9112 §9.3.2: a refused request followed by a pipelined one: one 400, the connection closes, the second is never handled (CHP accepts both)',
      send: `GET /one HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\nGET /two HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.2: a bare CR inside a header line: 400',
      send: `GET /x HTTP/1.1\r\n${H}X-A: a\rX-B: b\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.2: bare LF line endings (a recipient MAY accept them; Node refuses): 400 (CHP: same)',
      send: 'GET /x HTTP/1.1\nHost: a.example\n\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.2: a bare LF ending one header line among CRLFs: 400',
      send: 'GET /x HTTP/1.1\r\nHost: a.example\nX-A: b\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §5.2: obs-fold (a header line continued on the next) in a request: 400',
      send: `GET /x HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §5.1: whitespace between a field name and the colon: 400',
      send: `GET /x HTTP/1.1\r\n${H}X-A : a\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §5.1: "Transfer-Encoding : chunked" (whitespace before the colon, a classic smuggling form): 400',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding : chunked\r\n\r\nabc`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.2: whitespace before the first header line: 400',
      send: 'GET /x HTTP/1.1\r\n Host: a.example\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §5.1: a field name is a token; a control byte in it: 400',
      send: `GET /x HTTP/1.1\r\n${H}X\x01Y: a\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §5.1: a non-ASCII byte in a field name: 400',
      send: `GET /x HTTP/1.1\r\n${H}X\xe9: a\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §5.5: NUL in a field value: 400',
      send: `GET /x HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §5.5: DEL in a field value: 400',
      send: `GET /x HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §5.5: obs-text (0x80-0xFF) and HTAB in a field value are allowed and forwarded byte for byte',
      send: `GET /x HTTP/1.1\r\n${H}X-A: a\xffb\tc\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-a: a\xffb\tc'] }],
    },
    {
      desc: 'RFC 9110 §9.1: a method is a token; "G(T" is not: 400',
      send: `G(T /x HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §9.1: an unknown method (should be 501; Node refuses methods outside its list with 400) (CHP: same)',
      send: `FOO /x HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §9.1: methods are case-sensitive, "get" is not GET: 400',
      send: `get /x HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.2/§3: the HTTP/2 connection preface on an HTTP/1.1 port: 400 and close',
      send: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §15.6.6, RFC 9112 §2.3: an "HTTP/2.0" request line (major version 2) is 505 (Node lets it through; CHP forwards it as HTTP/1.1)',
      send: `GET /x HTTP/2.0\r\n${H}\r\n`,
      responses: [505],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §15.6.6: an "HTTP/0.9" request line is 505 (Node lets it through; CHP forwards it as HTTP/1.1)',
      send: `GET /x HTTP/0.9\r\n${H}\r\n`,
      responses: [505],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.3: HTTP/1.2 (should be processed as 1.1; Node\'s parser refuses unknown minor versions, and 505 is for an unsupported major version): 400 (CHP: same)',
      send: `GET /x HTTP/1.2\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §15.6.6, RFC 9112 §2.3: HTTP/3.0 in a request line (major version 3): 505 (Node\'s parser refuses it; CHP: 400)',
      send: `GET /x HTTP/3.0\r\n${H}\r\n`,
      responses: [505],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §15.6.6: HTTP/3.1: 505 (CHP: 400)',
      send: `GET /x HTTP/3.1\r\n${H}\r\n`,
      responses: [505],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §15.6.6: HTTP/2.1 (major version 2; only "2.0" gets through Node\'s parser): 505 (CHP: 400)',
      send: `GET /x HTTP/2.1\r\n${H}\r\n`,
      responses: [505],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §2.3: HTTP-version is exactly one digit "." one digit: "HTTP/10.0" is no version at all, 400',
      send: `GET /x HTTP/10.0\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3: bytes after a valid version in the request line: 400',
      send: `GET /x HTTP/1.1x\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3: an HTTP/0.9 simple request ("GET /" without a version) from a client that then half-closes: 400',
      send: 'GET /x\r\n',
      halfClose: true,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2: a "#" fragment in the request target (no form allows it): 400 (CHP strips it and forwards)',
      send: `GET /x#frag HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2.4: asterisk-form outside OPTIONS: 400 (CHP forwards "GET /*")',
      send: `GET * HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2.4, RFC 9110 §9.3.7: "OPTIONS *" is about the server, answered 200 by the proxy itself (CHP forwards "OPTIONS /*")',
      send: `OPTIONS * HTTP/1.1\r\n${H}\r\n`,
      responses: [200],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2.3: authority-form outside CONNECT: 400',
      send: `GET a.example:80 HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §9.3.6, §9.1: CONNECT (this reverse proxy opens no tunnels): 501 Not Implemented and close (CHP: the connection is closed without a response)',
      send: `CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n`,
      responses: [501],
      upstream: [],
    },
    {
      desc: 'CONNECT followed at once by would-be tunnel bytes (a request): 501, the bytes are never read as a request',
      send: `CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n${INNER}`,
      responses: [501],
      upstream: [],
    },
    {
      desc: 'CONNECT pipelined behind a GET: the GET is answered, then 501 and close',
      send: `GET /x HTTP/1.1\r\n${H}\r\nCONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n`,
      responses: [200, 501],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1' }],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form with a scheme other than http/https: 400 (CHP forwards it)',
      send: `GET ftp://a.example/x HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §4.2.4: userinfo in an http URI is an error: 400 (CHP forwards)',
      send: `GET http://user:pw@a.example/x HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §4.2.1: an http URI with an empty host must be rejected: 400 (CHP forwards "GET /")',
      send: `GET http:///x HTTP/1.1\r\n${H}\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form without a default route for its host (no --host-routing): routed by its path, forwarded in origin-form with the authority as Host (CHP keeps the Host header)',
      send: `GET http://b.example/x?y HTTP/1.1\r\n${H}\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x?y HTTP/1.1', has: ['host: b.example', 'x-forwarded-host: b.example'] }],
    },
    {
      desc: 'RFC 9112 §3 (request-line length): an 8000-byte path is forwarded exactly',
      send: `GET ${long(8000)} HTTP/1.1\r\n${H}\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: `GET ${long(8000)} HTTP/1.1` }],
    },
    {
      desc: 'RFC 9112 §3, RFC 9110 §15.5.15: a request target beyond Node\'s 16 KiB header limit (which counts the request line): 414 URI Too Long (CHP: 431)',
      send: `GET ${long(17000)} HTTP/1.1\r\n${H}\r\n`,
      responses: [414],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3: a 40 KiB request target: 414 (CHP: 431)',
      send: `GET ${long(40000)} HTTP/1.1\r\n${H}\r\n`,
      responses: [414],
      upstream: [],
    },
    {
      desc: 'RFC 6585 §5: header fields beyond the 16 KiB limit (a short request line): 431 (CHP: same)',
      send: `GET /x HTTP/1.1\r\n${H}X-Big: ${'v'.repeat(17000)}\r\n\r\n`,
      responses: [431],
      upstream: [],
    },
    {
      desc: 'RFC 6585 §5: a header name beyond the limit: 431',
      send: `GET /x HTTP/1.1\r\n${H}X${'n'.repeat(17000)}: 1\r\n\r\n`,
      responses: [431],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.8 / RFC 6455 §4.1: a websocket upgrade without a body is forwarded (101)',
      send: `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
      responses: [101],
      upstream: [{ to: 'up', line: 'GET /ws HTTP/1.1', has: ['upgrade: websocket', 'connection: upgrade', 'host: a.example'] }],
    },
    {
      desc: 'upgrade with a Content-Length body: refused 400 (a body would be held back until a 101 that the upstream, waiting for the body, never sends; CHP hangs)',
      send: `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'upgrade with a chunked body: refused 400 (CHP forwards the TE header without the body: 101)',
      send: `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
    {
      desc: 'upgrade with "Content-Length: 0" (no body) is forwarded (101)',
      send: `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`,
      responses: [101],
      upstream: [{ to: 'up', line: 'GET /ws HTTP/1.1' }],
    },
    {
      desc: 'RFC 9112 §3.2: an upgrade request with two Host lines: 400 (CHP: 101)',
      send: `GET /ws HTTP/1.1\r\n${H}Host: b.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
      responses: [400],
      upstream: [],
    },
  ],
};

/** Host rules and absolute-form, with --host-routing: bob.example.com and alice.example.com. */
export const hosts: CaseTable = {
  name: 'host',
  flags: ['--host-routing'],
  routes: { '/bob.example.com': 'bob', '/alice.example.com': 'alice' },
  cases: [
    {
      desc: 'baseline: routed by the Host header (RFC 9110 §7.2)',
      send: 'GET /x HTTP/1.1\r\nHost: bob.example.com\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'bob', line: 'GET /x HTTP/1.1', has: ['host: bob.example.com', 'x-forwarded-host: bob.example.com'] }],
    },
    {
      desc: 'RFC 9112 §3.2: two Host lines: 400 (CHP routes by the first)',
      send: 'GET /x HTTP/1.1\r\nHost: bob.example.com\r\nHost: alice.example.com\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2: two identical Host lines are still more than one: 400 (CHP accepts)',
      send: 'GET /x HTTP/1.1\r\nHost: bob.example.com\r\nhost: bob.example.com\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2: an HTTP/1.1 request without Host: 400 (CHP: same, Node\'s check)',
      send: 'GET /x HTTP/1.1\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.2: Host "bob.example.com:8000:9" (port not digits): 400 (CHP routes it to bob)',
      send: 'GET /x HTTP/1.1\r\nHost: bob.example.com:8000:9\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.2: Host "alice@bob.example.com" ("@" is not in reg-name): 400 (CHP looks it up as a host name: 404 here)',
      send: 'GET /x HTTP/1.1\r\nHost: alice@bob.example.com\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.2: Host with a space inside: 400 (CHP: 404 here)',
      send: 'GET /x HTTP/1.1\r\nHost: bob example.com\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.2: Host with a path: 400 (CHP routes it to bob)',
      send: 'GET /x HTTP/1.1\r\nHost: bob.example.com/admin\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.2: an unterminated IPv6 literal: 400 (CHP: 404 here)',
      send: 'GET /x HTTP/1.1\r\nHost: [::1\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9110 §7.2: a valid Host with a port, in any case: routed by its lowercased name (RFC 3986 §3.2.2: host names are case-insensitive; CHP matches them case-sensitively: 404)',
      send: 'GET /x HTTP/1.1\r\nHost: BOB.example.com:8000\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'bob', line: 'GET /x HTTP/1.1', has: ['host: BOB.example.com:8000', 'x-forwarded-port: 8000'] }],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form: the authority replaces Host for routing and forwarding; the upstream gets origin-form (CHP routes by Host to alice and forwards Host alice)',
      send: 'GET http://bob.example.com/x?y=1 HTTP/1.1\r\nHost: alice.example.com\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'bob', line: 'GET /x?y=1 HTTP/1.1', has: ['host: bob.example.com', 'x-forwarded-host: bob.example.com', 'x-forwarded-port: 80'] }],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form with a port and dot segments: routed to its host, path normalised (CHP routes by Host to alice)',
      send: 'GET http://bob.example.com:8000/a/../b HTTP/1.1\r\nHost: alice.example.com\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'bob', line: 'GET /b HTTP/1.1', has: ['host: bob.example.com:8000', 'x-forwarded-port: 8000'] }],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form without a path is "/"; scheme and host are case-insensitive (CHP routes by Host to alice)',
      send: 'GET HTTP://BOB.EXAMPLE.COM HTTP/1.1\r\nHost: alice.example.com\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'bob', line: 'GET / HTTP/1.1', has: ['host: BOB.EXAMPLE.COM'] }],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form in HTTP/1.0 without Host: the authority is the Host (CHP: 404)',
      send: 'GET http://bob.example.com/x HTTP/1.0\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'bob', line: 'GET /x HTTP/1.1', has: ['host: bob.example.com'] }],
    },
    {
      desc: 'RFC 9112 §3.2: absolute-form does not excuse two Host lines: 400 (CHP routes by the first Host)',
      send: 'GET http://bob.example.com/x HTTP/1.1\r\nHost: alice.example.com\r\nHost: bob.example.com\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form with an invalid authority ("bob.example.com:8000:9"): 400 (CHP: 500)',
      send: 'GET http://bob.example.com:8000:9/x HTTP/1.1\r\nHost: alice.example.com\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3.2.2: absolute-form websocket upgrade: routed and forwarded with the authority as Host (CHP routes by Host to alice)',
      send: 'GET http://bob.example.com/ws HTTP/1.1\r\nHost: alice.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      responses: [101],
      upstream: [{ to: 'bob', line: 'GET /ws HTTP/1.1', has: ['host: bob.example.com', 'x-forwarded-host: bob.example.com'] }],
    },
  ],
};

/** Path confusion: routes /user/a, /user/b and a catch-all "/" (CHP's rules in README "Differences from CHP"). */
export const paths: CaseTable = {
  name: 'paths',
  flags: [],
  routes: { '/user/a': 'a', '/user/b': 'b', '/': 'root' },
  cases: [
    {
      desc: 'RFC 3986 §5.2.4: dot segments are resolved before routing; the upstream gets the same normalised path',
      send: 'GET /user/a/../b/x HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'b', line: 'GET /user/b/x HTTP/1.1' }],
    },
    {
      desc: 'RFC 3986 §2.3/§6.2.2.2: encoded dot segments "%2e%2e" are dot segments (WHATWG): /user/b',
      send: 'GET /user/a/%2e%2e/b HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'b', line: 'GET /user/b HTTP/1.1' }],
    },
    {
      desc: 'RFC 3986 §2.2: an encoded slash stays inside its segment: /user/a%2Fb does not match /user/a (CHP decodes it and routes to a)',
      send: 'GET /user/a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'root', line: 'GET /user/a%2Fb HTTP/1.1' }],
    },
    {
      desc: 'RFC 3986 §5.2.4: dot segments above the root clamp at "/"',
      send: 'GET /user/a/%2E%2E/%2E%2E/%2E%2E/etc HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'root', line: 'GET /etc HTTP/1.1' }],
    },
    {
      desc: 'RFC 3986 §3.3: "//user/a" is a path with an empty first segment, not /user/a; forwarded as is (CHP reads "//user" as an authority and routes "/a": the same upstream here)',
      send: 'GET //user/a HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'root', line: 'GET //user/a HTTP/1.1' }],
    },
    {
      desc: 'WHATWG URL (CHP\'s parser): backslashes read as "/", so /user\\a\\..\\b is /user/b, and that is what the upstream gets',
      send: 'GET /user\\a\\..\\b HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'b', line: 'GET /user/b HTTP/1.1' }],
    },
    {
      desc: 'RFC 9112 §3.2: "#" is not allowed in a request target, so a fragment cannot hide dot segments: 400 (CHP strips it)',
      send: 'GET /user/a#/../../b HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 3986 §3.4: the query is not a path: dot segments in it are left alone',
      send: 'GET /user/a?x=/../b HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'a', line: 'GET /user/a?x=/../b HTTP/1.1' }],
    },
    {
      desc: 'an encoded NUL in the path: 400 (CHP forwards it)',
      send: 'GET /user/a/%00 HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 3986 §2.1: a malformed %-escape: 400 (CHP answers 500)',
      send: 'GET /user/a/%zz HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 3986 §2.1: characters outside RFC 3986 (" { } |) are percent-encoded, the routing is unchanged',
      send: 'GET /user/a/{"|} HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [200],
      upstream: [{ to: 'a', line: 'GET /user/a/%7B%22|%7D HTTP/1.1' }],
    },
    {
      desc: 'RFC 9112 §3: a non-ASCII byte in the request target: Node refuses (400)',
      send: 'GET /user/a/\xe9 HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [400],
      upstream: [],
    },
    {
      desc: 'RFC 9112 §3: a control byte (HTAB) in the request target: 400',
      send: 'GET /user/a/\tb HTTP/1.1\r\nHost: h\r\n\r\n',
      responses: [400],
      upstream: [],
    },
  ],
};

/** Header rules: Connection cannot remove framing or the proxy's X-Forwarded-*; client claims dropped. */
export const headers: CaseTable = {
  name: 'headers',
  flags: [],
  routes: { '': 'up' },
  cases: [
    {
      desc: 'RFC 9110 §7.6.1: "Connection: X-Forwarded-Host" drops the client\'s X-Forwarded-Host, never the proxy\'s: exactly one, the Host (CHP forwards the client\'s)',
      send: `GET /x HTTP/1.1\r\n${H}X-Forwarded-Host: evil.example\r\nConnection: X-Forwarded-Host\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-forwarded-host: a.example', 'host: a.example', 'connection: keep-alive'] }],
    },
    {
      desc: 'RFC 9110 §7.6.1: "Connection: X-Forwarded-Host" with no such header: the proxy still sets its own (CHP: same)',
      send: `GET /x HTTP/1.1\r\n${H}Connection: X-Forwarded-Host\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-forwarded-host: a.example'] }],
    },
    {
      desc: 'CHP compatibility (http-proxy-3 xfwd): a client X-Forwarded-Host not named in Connection is kept',
      send: `GET /x HTTP/1.1\r\n${H}X-Forwarded-Host: front.example\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-forwarded-host: front.example'] }],
    },
    {
      desc: 'RFC 9110 §7.6.1: "Connection: X-Forwarded-For" drops the client\'s value; the proxy\'s (the peer address) stays (CHP appends to the client\'s value)',
      send: `GET /x HTTP/1.1\r\n${H}X-Forwarded-For: 203.0.113.9\r\nConnection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Port\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-forwarded-for: 127.0.0.1', 'x-forwarded-proto: http', 'x-forwarded-port: 80'] }],
    },
    {
      desc: 'CHP compatibility: X-Forwarded-For lines are joined ", " and the peer appended with "," (exactly CHP 5.3)',
      send: `GET /x HTTP/1.1\r\n${H}X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-forwarded-for: 203.0.113.9, 198.51.100.7,127.0.0.1', 'x-forwarded-proto: http'] }],
    },
    {
      desc: 'RFC 9110 §7.6.1: "Connection: Host" cannot remove Host (routing and the upstream rely on it) (CHP: same, it ignores Connection in requests)',
      send: `GET /x HTTP/1.1\r\n${H}Connection: Host\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['host: a.example', 'connection: keep-alive'] }],
    },
    {
      desc: 'RFC 9110 §7.6.1 / RFC 9112 §6.2: "Connection: Content-Length" cannot remove the body\'s framing (CHP: same)',
      send: `POST /x HTTP/1.1\r\n${H}Content-Length: 3\r\nConnection: Content-Length\r\n\r\nabc`,
      responses: [200],
      upstream: [{ to: 'up', line: 'POST /x HTTP/1.1', has: ['content-length: 3'], body: 'abc' }],
    },
    {
      desc: 'RFC 9110 §7.6.1 / RFC 9112 §6.1: "Connection: Transfer-Encoding": TE is hop-by-hop anyway; the body arrives whole, in one request framed by the proxy',
      send: `POST /x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'POST /x HTTP/1.1', body: 'abc' }],
    },
    {
      desc: 'RFC 9110 §7.6.1: other headers named in Connection are dropped; keep-alive and Keep-Alive are hop-by-hop',
      send: `GET /x HTTP/1.1\r\n${H}Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nX-Kept: k\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-kept: k'], lacks: ['x-secret', 'keep-alive'] }],
    },
    {
      desc: 'RFC 7239 / de-facto X-Real-IP: a client must not claim an address: both dropped (CHP passes them through)',
      send: `GET /x HTTP/1.1\r\n${H}Forwarded: for=198.51.100.1;proto=https\r\nX-Real-IP: 198.51.100.2\r\n\r\n`,
      responses: [200],
      upstream: [{ to: 'up', line: 'GET /x HTTP/1.1', has: ['x-forwarded-for: 127.0.0.1'], lacks: ['forwarded', 'x-real-ip'] }],
    },
    {
      desc: 'websocket upgrade: the same header rules (client claims dropped, the proxy\'s X-Forwarded-Host kept) (CHP forwards X-Real-IP and the client\'s X-Forwarded-Host)',
      send: `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade, X-Forwarded-Host\r\nUpgrade: websocket\r\nX-Forwarded-Host: evil.example\r\nX-Real-IP: 198.51.100.2\r\n\r\n`,
      responses: [101],
      upstream: [{ to: 'up', line: 'GET /ws HTTP/1.1', has: ['x-forwarded-host: a.example', 'upgrade: websocket'], lacks: ['x-real-ip'] }],
    },
  ],
};

export const tables: readonly CaseTable[] = [framing, hosts, paths, headers];
