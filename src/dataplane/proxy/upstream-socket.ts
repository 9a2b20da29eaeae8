// A guard on every pooled upstream socket, for the two places where undici 6's HTTP parser is
// more lenient than RFC 9112 and than Node's own parser (which CHP uses):
//
//  - A bare CR in a status line (`HTTP/1.1 200 OK\rX-Injected: 1`): undici skips the byte after
//    the CR and parses the rest as a header, so a response head would be forwarded in a shape the
//    upstream never sent (RFC 9112 §2.2). The guard destroys the socket with code
//    SWY_UPSTREAM_BARE_CR instead: the request fails with 502.
//  - An unsolicited `100 Continue` (we never send Expect: Node's server already answered the
//    client's): undici fails the request ("bad response"), Node's client skips it. RFC 9110 §15.2
//    says a client must parse unexpected 1xx responses, so the guard removes every 100 head, also
//    one split across reads (`HTTP/1.1 100 Continue\r\n` and `\r\n` in two TCP segments): a
//    status line is withheld from undici until its end shows its code, a 100 head until its empty
//    line, then removed; what follows goes through. At most MAX_HELD bytes are withheld: a longer
//    status line or 100 head is handed to undici as it is (which fails it: 502).
//
// Contract: cheap when nothing is wrong — the guard looks only at status lines and at the head of
// an interim (1xx) response. It learns that a response is due when undici writes a request head
// (with pipelining 1 at most one request is in flight per socket): undici writes a request as one
// latin1 string starting with the method; chunk framing strings start with CR, bodies are Buffers.

import type { Socket } from 'node:net';

const CR = 13;
const LF = 10;

const IDLE = 0; // body or no request: nothing to look at
const STATUS = 1; // reading a status line
const INTERIM = 2; // reading the rest of a 1xx head (another status line follows)

/** Most bytes withheld from undici at once: a status line, or a 100 head (its headers included). */
const MAX_HELD = 16 * 1024;

/** Set on errors of a socket that had carried a request before (a reused pooled connection). */
export const REUSED = Symbol('switchyard.reusedSocket');

export function guardUpstreamSocket(socket: Socket): void {
  let state = IDLE;
  let requests = 0;
  // Status line: bytes seen so far, the three status code digits ("HTTP/1.1 NNN"), whether the
  // last byte seen was a CR.
  let pos = 0;
  let d0 = 0;
  let d1 = 0;
  let d2 = 0;
  let crPending = false;
  // Interim head: how much of CRLF CRLF has been matched, and whether it is a 100 to remove.
  let endMatch = 0;
  let drop = false;
  // Bytes withheld from undici (the start of a status line, or of a 100 head, whose end has not
  // arrived yet); already scanned: the next read goes on after them.
  let held: Buffer | null = null;

  const write = socket.write;
  // Fixed arity (no rest array per write): Writable.write treats missing arguments as absent.
  socket.write = function (this: Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (typeof chunk === 'string' && chunk.charCodeAt(0) !== CR) {
      requests++;
      state = STATUS;
      pos = 0;
      crPending = false;
    }
    return (write as (c: unknown, e?: unknown, f?: unknown) => boolean).call(this, chunk, encoding, cb);
  } as typeof socket.write;

  socket.prependListener('error', (e: Error & { [REUSED]?: boolean }) => {
    if (requests > 1) e[REUSED] = true;
  });

  const read = socket.read;
  socket.read = function (this: Socket, n?: number): unknown {
    const chunk = read.call(this, n) as Buffer | string | null;
    if (state === IDLE || chunk === null || typeof chunk === 'string') return chunk;
    return scan(chunk);
  };

  function violation(): null {
    state = IDLE;
    const e: NodeJS.ErrnoException = new Error('upstream status line contains a bare CR (RFC 9112 §2.2)');
    e.code = 'SWY_UPSTREAM_BARE_CR';
    socket.destroy(e);
    return null;
  }

  function scan(chunk: Buffer): Buffer | null {
    let buf = chunk;
    let i = 0;
    // Start of the status line or 100 head being read (-1: none yet): withheld if it does not end here.
    let lineStart = -1;
    if (held !== null) {
      buf = Buffer.concat([held, chunk]);
      i = held.length;
      lineStart = 0;
      held = null;
    }
    const len = buf.length;
    let pieces: Buffer[] | null = null; // what goes to undici, once a 100 head was cut out
    let passFrom = 0;
    while (i < len && state !== IDLE) {
      if (state === STATUS) {
        if (lineStart === -1) lineStart = i;
        let ended = false;
        for (; i < len; i++) {
          const b = buf[i]!;
          if (crPending) {
            if (b !== LF) return violation();
            crPending = false;
            ended = true;
            i++;
            break;
          }
          if (b === CR) crPending = true;
          else if (b === LF) {
            ended = true;
            i++;
            break;
          } else {
            if (pos === 9) d0 = b;
            else if (pos === 10) d1 = b;
            else if (pos === 11) d2 = b;
            pos++;
          }
        }
        if (!ended) break; // the line goes on in the next read
        pos = 0;
        const c0 = d0;
        d0 = 0;
        // '1' '0' '1' is a 101: undici takes it from here (and fails it: no upgrade was asked).
        if (c0 === 49 && !(d1 === 48 && d2 === 49)) {
          state = INTERIM;
          endMatch = 2; // the status line's line end starts the empty line that ends the head
          drop = d1 === 48 && d2 === 48;
          if (!drop) lineStart = -1; // another 1xx (103): undici's
        } else {
          state = IDLE;
          lineStart = -1;
        }
      } else {
        // INTERIM: find the empty line that ends this head (CRLF CRLF, or bare LFs).
        let ended = false;
        for (; i < len; i++) {
          const b = buf[i]!;
          if (b === LF) {
            if (endMatch >= 2) {
              ended = true;
              i++;
              break;
            }
            endMatch = 2;
          } else if (b === CR) endMatch = endMatch === 2 ? 3 : 1;
          else endMatch = 0;
        }
        if (!ended) break; // the head goes on in the next read
        if (drop) {
          pieces ??= [];
          pieces.push(buf.subarray(passFrom, lineStart));
          passFrom = i;
          drop = false;
        }
        lineStart = -1;
        state = STATUS;
        pos = 0;
      }
    }
    let passTo = len;
    if (lineStart !== -1 && state !== IDLE) {
      if (len - lineStart <= MAX_HELD) {
        held = Buffer.from(buf.subarray(lineStart));
        passTo = lineStart;
      } else {
        // Too long to be a status line or a 100 head worth keeping: undici judges it.
        state = IDLE;
        drop = false;
      }
    }
    let out: Buffer;
    if (pieces === null) out = passFrom === 0 && passTo === len ? buf : buf.subarray(passFrom, passTo);
    else {
      pieces.push(buf.subarray(passFrom, passTo));
      out = Buffer.concat(pieces);
    }
    return out.length === 0 ? (socket.read() as Buffer | null) : out;
  }
}
