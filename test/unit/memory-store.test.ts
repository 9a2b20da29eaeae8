import { runStoreContract } from '../contract/store-contract.js';
import { createMemoryStore } from '../../src/store/memory-store.js';

runStoreContract('memory store', {
  async create() {
    const s = createMemoryStore();
    await s.start();
    return s;
  },
});
