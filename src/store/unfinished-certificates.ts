// TEMPORARY (branch h-acmestore, replaced by the file and etcd implementations in the next
// commits): file and etcd stores' `certificates` until then. Every call fails loudly.

import { ErrorCode, SwitchyardError } from '../errors.js';
import type { CertificateStore } from './certificate-store.js';

export function unfinishedCertificates(kind: string): CertificateStore {
  const fail = (): never => {
    throw new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, `certificate storage on the ${kind} store is not implemented yet`);
  };
  return new Proxy({} as CertificateStore, { get: () => fail });
}
