// A worker's ChallengeSource: every question goes to the primary (which reads the store) over IPC.
// Each question has a deadline (an unanswered one resolves undefined: the challenge gets 404, the
// handshake fails), so a busy or restarting primary never leaves a socket hanging.

import type { ChallengeSource, KeyCert } from './challenge-source.js';

type Ask = { readonly t: 'acme-ask'; readonly id: number; readonly kind: 'http01' | 'alpn' | 'on-demand'; readonly key: string; readonly host?: string };
type Answer = { readonly t: 'acme-answer'; readonly id: number; readonly value: string | KeyCert | null };

const ASK_MS = 10_000;
const ON_DEMAND_MS = 130_000;

export function createIpcChallengeSource(send: (m: Ask) => void, onDemand: boolean): ChallengeSource & { receive(m: Answer): void } {
  let nextId = 1;
  const waiting = new Map<number, (v: string | KeyCert | null) => void>();

  function ask(kind: Ask['kind'], key: string, host?: string): Promise<string | KeyCert | null> {
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(null);
      }, kind === 'on-demand' ? ON_DEMAND_MS : ASK_MS);
      waiting.set(id, (v) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(v);
      });
      send({ t: 'acme-ask', id, kind, key, ...(host !== undefined ? { host } : {}) });
    });
  }

  return {
    receive(m) {
      waiting.get(m.id)?.(m.value);
    },
    async http01(token, host) {
      const v = await ask('http01', token, host);
      return typeof v === 'string' ? v : undefined;
    },
    async alpn(name) {
      const v = await ask('alpn', name);
      return v !== null && typeof v === 'object' ? v : undefined;
    },
    ...(onDemand
      ? {
          async onDemand(name: string) {
            const v = await ask('on-demand', name);
            return v !== null && typeof v === 'object' ? v : undefined;
          },
        }
      : {}),
  };
}
