// Watches a certificate/key file pair (--ssl-cert/--ssl-key, --api-ssl-cert/--api-ssl-key) and
// hands each new pair to `onPair` (the reloader checks it and applies it with setSecureContext).
//
// Contract: files are polled by path (fs.watchFile: stat every `intervalMs`), so both ways a
// certificate gets replaced are seen: written in place (size/mtime change) and renamed over
// (a new inode). Changes that arrive together (the key, then the certificate) are read as one
// pair after `settleMs` of quiet. A half-written or mismatched pair is refused by `onPair` with a
// log line and the running certificate stays; the next change is read again. `close()` stops.

import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import type { Logger } from '../observability/logger.js';

export interface CertFiles {
  readonly key: string;
  readonly cert: string;
}

export function watchCertificateFiles(o: {
  files: CertFiles;
  what: string;
  onPair: (pair: { key: Buffer; cert: Buffer }) => Promise<unknown>;
  log: Logger;
  intervalMs?: number;
  settleMs?: number;
}): { close(): void } {
  const interval = o.intervalMs ?? 250;
  const settle = o.settleMs ?? 100;
  let timer: NodeJS.Timeout | undefined;
  let reading = false;
  let again = false;
  let closed = false;

  const read = async (): Promise<void> => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      const [key, cert] = await Promise.all([readFile(o.files.key), readFile(o.files.cert)]);
      await o.onPair({ key, cert });
    } catch (e) {
      o.log.warn(`${o.what}: cannot read the certificate files, keeping the running certificate: ${(e as Error).message}`);
    } finally {
      reading = false;
      if (again && !closed) {
        again = false;
        void read();
      }
    }
  };

  const changed = (curr: Stats, prev: Stats): void => {
    // watchFile also calls when nothing but atime moved; a file that vanished (mid rename) is
    // read again when it comes back.
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size && curr.ctimeMs === prev.ctimeMs) return;
    if (curr.nlink === 0 && curr.ino === 0) return;
    clearTimeout(timer);
    timer = setTimeout(() => void read(), settle);
  };
  for (const f of [o.files.key, o.files.cert]) watchFile(f, { interval, persistent: false }, changed);
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const f of [o.files.key, o.files.cert]) unwatchFile(f, changed);
    },
  };
}
