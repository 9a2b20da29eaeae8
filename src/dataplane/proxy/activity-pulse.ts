// Activity while data flows (long downloads, uploads, websockets): a listener to attach to
// 'data' events that records the route's activity at most once per second.

export const ACTIVITY_EVERY_MS = 1000;

export function activityPulse(record: (path: string) => void, path: string): () => void {
  let last = Date.now();
  return () => {
    const now = Date.now();
    if (now - last >= ACTIVITY_EVERY_MS) {
      last = now;
      record(path);
    }
  };
}
