// The CertificateStore contract for the memory store (the file store's run is beside it).

import type { TestContext } from 'node:test';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { runCertificateStoreContract } from '../contract/certificate-store-contract.js';

runCertificateStoreContract('memory store', {
  async open(t: TestContext, n: number) {
    const s = createMemoryStore();
    await s.start();
    t.after(() => s.close());
    return Array.from({ length: n }, () => s);
  },
});
