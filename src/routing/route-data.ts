// Bounds on the data stored with a route (the JSON object the API accepted: `target` plus any
// keys the client posted), checked wherever data enters a store: POST /api/routes, a route file
// read from disk, an etcd value written by another tool.
//
// Why: route data is serialised again and again (GET /api/routes, the dashboard, the worker IPC,
// the file store), and JSON.stringify recurses: one route nested a few thousand levels deep made
// every GET /api/routes answer 500 and stopped table updates to the workers. JSON.parse does not
// recurse in V8, so such a body arrives intact; it must be refused before it is stored.
//
// Contract: `routeDataProblem` never recurses (safe on any depth) and returns the reason, or
// undefined for data within the bounds. The route object itself is level 1:
// {"target": "...", "a": {"b": [1]}} nests 3 levels.

/** Deepest nesting of objects/arrays in a route's data, the route object included. */
export const ROUTE_DATA_MAX_DEPTH = 32;
/** Largest route data, serialised as JSON (UTF-8 bytes). */
export const ROUTE_DATA_MAX_BYTES = 64 * 1024;

export function routeDataProblem(data: unknown): string | undefined {
  // Depth first, without recursion: only then is JSON.stringify (recursive) safe to call.
  const stack: unknown[] = [data];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const v = stack.pop();
    const d = depths.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > ROUTE_DATA_MAX_DEPTH) return `route data nests more than ${ROUTE_DATA_MAX_DEPTH} levels deep`;
    const children = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
    for (const c of children) {
      if (typeof c === 'object' && c !== null) {
        stack.push(c);
        depths.push(d + 1);
      }
    }
  }
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch (e) {
    return `route data cannot be serialised as JSON: ${(e as Error).message}`;
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > ROUTE_DATA_MAX_BYTES) return `route data is ${bytes} bytes as JSON, more than ${ROUTE_DATA_MAX_BYTES}`;
  return undefined;
}
