// A Server-Sent Events hub: many open streams, one serialisation per broadcast.
//
// Contract: a broadcast is JSON-encoded once and the same bytes written to every stream. A
// stream that stops reading (more than `maxBacklog` bytes buffered) is cut, so server memory does
// not grow with a slow client or with the time a stream stays open. At most `maxStreams` streams.
// `onActive(true)` fires when the first stream opens, `onActive(false)` when the last one closes:
// producers that only matter to open streams start and stop there.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export interface EventStreamHub {
  /**
   * Check that one more stream may open (throws SWY_STORE_UNAVAILABLE, 503, when full); call it
   * before doing any work for the stream.
   */
  admit(): void;
  /** Answer `req` with an event stream whose first event is `event: data`. */
  open(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, event: string, data: string): void;
  broadcast(event: string, payload: unknown): void;
  size(): number;
  close(): void;
}

export function createEventStreamHub(o: {
  log: Logger;
  maxStreams: number;
  maxBacklog: number;
  onActive?: (active: boolean) => void;
}): EventStreamHub {
  const streams = new Set<ServerResponse>();

  function send(res: ServerResponse, event: string, data: string): void {
    if (res.writableLength > o.maxBacklog) {
      o.log.warn('dashboard stream not reading; closing it');
      res.destroy();
      return;
    }
    res.write(`event: ${event}\ndata: ${data}\n\n`);
  }

  return {
    admit() {
      if (streams.size >= o.maxStreams) throw new SwitchyardError(ErrorCode.TOO_MANY_STREAMS, 'too many dashboard streams');
    },
    open(req, res, headers, event, data) {
      res.writeHead(200, {
        ...headers,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      });
      res.socket?.setNoDelay(true);
      // No idle timeout on a stream that only the server writes to.
      res.socket?.setTimeout(0);
      send(res, event, data);
      streams.add(res);
      if (streams.size === 1) o.onActive?.(true);
      const gone = (): void => {
        if (streams.delete(res) && streams.size === 0) o.onActive?.(false);
      };
      res.once('close', gone);
      req.once('error', gone);
    },
    broadcast(event, payload) {
      if (streams.size === 0) return;
      const data = JSON.stringify(payload);
      for (const res of streams) send(res, event, data);
    },
    size: () => streams.size,
    close() {
      const had = streams.size > 0;
      for (const res of streams) res.destroy();
      streams.clear();
      if (had) o.onActive?.(false);
    },
  };
}
