// Test helpers: real servers on real loopback sockets, always on port 0, always closed by t.after.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Writable } from 'node:stream';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { createApp, type App } from '../../src/app.js';
import { buildConfig } from '../../src/config/config.js';
import { parseArgv } from '../../src/config/flags.js';
import { threadsUnsupported, type WorkerMode } from '../../src/config/worker-mode.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface Closable {
  close(): Promise<void> | void;
}
export interface TestContextLike {
  after(fn: () => unknown): void;
}

/** Write `count` copies of `block` with backpressure (waits for 'drain'), then end. */
export function writeBlocks(res: Writable, block: Buffer, count: number): void {
  let n = 0;
  const pump = (): void => {
    while (n < count) {
      n++;
      if (!res.write(block)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

export async function listen0(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** The data-plane worker modes this Node offers on a TCP port: processes, and threads where it has reusePort. */
export const WORKER_MODES: readonly WorkerMode[] = ['processes', ...(threadsUnsupported({ kind: 'tcp', port: 0, host: '127.0.0.1' }) === undefined ? (['threads'] as const) : [])];

/**
 * A TCP port that was free a moment ago. Racy by nature (another test may take it before the
 * child binds it): only for programs that cannot bind port 0 and report the port (etcd, JupyterHub
 * configuring the proxy it spawns), and then with a bounded retry on EADDRINUSE. Spawned
 * Switchyard processes use startSwitchyardProcess (port 0) instead.
 */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen0(s);
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * A port on which nothing listens (connections are refused): 1 (tcpmux) is privileged, so no test
 * process can take it, unlike a port freed by freePort().
 */
export const REFUSED_PORT = 1;

/** Resolves with the first argument `emitter` emits `event` with (e.g. a backend's 'request'). */
export function nextEvent<T = unknown>(emitter: { once(event: string, fn: (arg: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, resolve));
}

export interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  bodyLength: number;
  body: string;
  name: string;
}

export interface Backend {
  port: number;
  url: string;
  server: http.Server;
  requests: Echo[];
}

/** Requests until stopped: counts 200 answers, and every other status or error as a failure. */
export interface LoadClient {
  stop(): Promise<{ ok: number; failed: string[] }>;
}

/**
 * `loops` request loops, each sending its next request when the previous one ended. `get(k, cb)`
 * starts loop k's request (cb gets the response); `done` runs at stop (e.g. destroy the agent).
 */
export function startLoadClient(
  get: (loop: number, onResponse: (res: IncomingMessage) => void) => http.ClientRequest,
  done: () => void = () => {},
  loops = 4,
): LoadClient {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const one = (k: number): Promise<void> =>
    new Promise((resolve) => {
      get(k, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else failed.push(`status ${res.statusCode}`);
          resolve();
        });
      }).on('error', (e) => {
        failed.push(e.message);
        resolve();
      });
    });
  const loopsDone = Array.from({ length: loops }, async (_, k) => {
    while (running) await one(k);
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loopsDone);
      done();
      return { ok, failed };
    },
  };
}

/** A backend that holds every answer until `release()` (a request stays in flight as long as a test needs). */
export interface HeldBackend {
  readonly server: http.Server;
  readonly port: number;
  /** Answers every held and later request with `slow done`. */
  release(): void;
}

export async function startHeldBackend(t: TestContextLike): Promise<HeldBackend> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const server = http.createServer((_req, res) => void released.then(() => res.end('slow done')));
  const port = await listen0(server);
  t.after(() => {
    release();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { server, port, release };
}

/**
 * An HTTP backend that answers every request with a JSON echo of what it received.
 * `handler` may take over specific requests (return true when it answered).
 */
export async function startBackend(
  t: TestContextLike,
  name = 'A',
  handler?: (req: IncomingMessage, res: ServerResponse) => boolean,
  opts: { ws?: boolean } = {},
): Promise<Backend> {
  const requests: Echo[] = [];
  const server = http.createServer((req, res) => {
    if (handler?.(req, res)) return;
    const chunks: Buffer[] = [];
    let len = 0;
    req.on('data', (c: Buffer) => {
      len += c.length;
      if (chunks.length < 64) chunks.push(c);
    });
    req.on('end', () => {
      const echo: Echo = {
        name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyLength: len,
        body: Buffer.concat(chunks).toString('utf8').slice(0, 4096),
      };
      requests.push(echo);
      const body = JSON.stringify(echo);
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  if (opts.ws) {
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    wss.on('connection', (ws, req) => {
      ws.on('message', (data, isBinary) => {
        const text = isBinary ? null : data.toString();
        if (text === '__url__') ws.send(req.url ?? '');
        else if (text?.startsWith('__close__')) ws.close(Number(text.slice(9)), 'bye');
        else ws.send(data, { binary: isBinary });
      });
      ws.on('error', () => {});
    });
  }
  const port = await listen0(server);
  t.after(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { port, url: `http://127.0.0.1:${port}`, server, requests };
}

export interface InProcess {
  app: App;
  proxyUrl: string;
  apiUrl: string;
  metricsUrl: string | undefined;
  logs: string[];
  log: Logger;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult>;
}

/** Switchyard in this process (fast), on port 0, with the given CHP-style flags. */
export async function startSwitchyard(
  t: TestContextLike,
  argv: string[] = [],
  env: Record<string, string> = { CONFIGPROXY_AUTH_TOKEN: 'secret' },
): Promise<InProcess> {
  const logs: string[] = [];
  // In this process: never fork data-plane workers from the test runner.
  const args = parseArgv(['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--workers', '1', ...argv]);
  const config = buildConfig(args, env);
  const log = createLogger({ level: 'debug', write: (l) => logs.push(l) });
  const app = await createApp(config, { log });
  // Registered before start: a start that fails half way (a port in use) still closes what it opened.
  t.after(() => app.close());
  await app.start();
  const ports = app.ports();
  const scheme = config.ssl ? 'https' : 'http';
  const apiScheme = config.apiSsl ? 'https' : 'http';
  const apiUrl = `${apiScheme}://127.0.0.1:${ports.api}`;
  const token = env.CONFIGPROXY_AUTH_TOKEN;
  return {
    app,
    proxyUrl: `${scheme}://127.0.0.1:${ports.proxy}`,
    apiUrl,
    metricsUrl: ports.metrics ? `http://127.0.0.1:${ports.metrics}` : undefined,
    logs,
    log,
    api: (method, path, body, headers) =>
      request(apiUrl + path, {
        method,
        headers: { ...(token ? { authorization: `token ${token}` } : {}), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
  };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

/** One HTTP request on a fresh connection (no pooling surprises in tests). */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; rejectUnauthorized?: boolean } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
        ...(u.protocol === 'https:' ? { rejectUnauthorized: opts.rejectUnauthorized ?? false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Send raw bytes on a new TCP connection and collect everything until the server closes or `ms`. */
export async function rawRequest(port: number, data: string, ms = 2000): Promise<string> {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(data);
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  // A bound on how long we listen for a peer that may keep the connection open (a clock on purpose).
  await Promise.race([once(sock, 'close'), new Promise((r) => setTimeout(r, ms))]);
  sock.destroy();
  return Buffer.concat(chunks).toString('latin1');
}

export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20)); // the polling period of a bounded condition wait

  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export interface Spawned {
  proc: ChildProcess;
  /** stdout and stderr as they arrived. */
  output: () => string;
  /** stdout alone (e.g. `--access-log -`). */
  stdout: () => string;
  exited: Promise<number | null>;
}

/** Run the real CLI (dist/src/main.js) as a child process (`nodeArgs`: flags for node itself). */
export function spawnSwitchyard(t: TestContextLike, argv: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Spawned {
  const proc = spawn(process.execPath, [...nodeArgs, MAIN, ...argv], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    stdout += c.toString();
  });
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return { proc, output: () => out, stdout: () => stdout, exited };
}

/**
 * Wait (bounded) until a child's output has a line matching `re`. A child writes its log line
 * before the effect a test sees on a socket, but the test may read the socket before the pipe:
 * asserting on output() at once can miss a line that is on its way.
 */
export async function waitForLine(output: () => string, re: RegExp, ms = 5000): Promise<void> {
  await waitFor(() => re.test(output()), ms, `a log line matching ${re}`);
}

export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    ms,
    `port ${port}`,
  );
}

/** True when a TCP connect to 127.0.0.1:`port` is refused (nothing listens there any more). */
export function connectRefused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

export interface SpawnedSwitchyard extends Spawned {
  pid: number;
  proxyPort: number;
  apiPort: number;
  proxyUrl: string;
  apiUrl: string;
  /** With --metrics-port (use 0): the bound port, read from the start-up line. */
  metricsPort: number | undefined;
  metricsUrl: string | undefined;
  /** With --xds-port (use 0): the bound port, read from the xDS start-up line. */
  xdsPort: number | undefined;
  /** An authenticated REST call (token `secret` unless CONFIGPROXY_AUTH_TOKEN was given). */
  api(method: string, path: string, body?: unknown): Promise<HttpResult>;
}

/**
 * The real CLI as a child process on port 0 (proxy and API on 127.0.0.1), resolved once its
 * start-up lines name the bound ports — no port is picked ahead and raced for. `argv` adds flags
 * (e.g. `--workers 1`); the process is killed in t.after.
 */
export async function startSwitchyardProcess(
  t: TestContextLike,
  argv: string[] = [],
  env: Record<string, string> = {},
  ms = 30_000,
  nodeArgs: string[] = [],
): Promise<SpawnedSwitchyard> {
  const fullEnv = { CONFIGPROXY_AUTH_TOKEN: 'secret', ...env };
  const s = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', ...argv], fullEnv, nodeArgs);
  const proxyRe = /Proxying https?:\/\/[^\s]*:(\d+) to/;
  const apiRe = /Proxy API at https?:\/\/[^\s]*:(\d+)\/api\/routes/;
  const metricsRe = /Serve metrics at http:\/\/[^\s]*:(\d+)\/metrics/;
  const xdsRe = /xDS control plane \(ADS[^)]*\) at grpcs?:\/\/[^\s]*:(\d+)/;
  const wanted = [proxyRe, apiRe];
  if (argv.includes('--metrics-port')) wanted.push(metricsRe);
  if (argv.includes('--xds-port')) wanted.push(xdsRe);
  await Promise.race([
    waitFor(() => wanted.every((re) => re.test(s.output())), ms, 'switchyard start-up lines'),
    s.exited.then((code) => {
      throw new Error(`switchyard exited (${code}) before it started:\n${s.output()}`);
    }),
  ]);
  const proxyPort = Number(proxyRe.exec(s.output())![1]);
  const apiPort = Number(apiRe.exec(s.output())![1]);
  const scheme = argv.includes('--ssl-key') ? 'https' : 'http';
  const apiScheme = argv.includes('--api-ssl-key') ? 'https' : 'http';
  const apiUrl = `${apiScheme}://127.0.0.1:${apiPort}`;
  const found = (re: RegExp): number | undefined => {
    const m = re.exec(s.output());
    return m ? Number(m[1]) : undefined;
  };
  const metricsPort = found(metricsRe);
  return {
    ...s,
    pid: s.proc.pid!,
    proxyPort,
    apiPort,
    proxyUrl: `${scheme}://127.0.0.1:${proxyPort}`,
    apiUrl,
    metricsPort,
    metricsUrl: metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}`,
    xdsPort: found(xdsRe),
    api: (method, path, body) =>
      request(apiUrl + path, {
        method,
        headers: { authorization: `token ${fullEnv.CONFIGPROXY_AUTH_TOKEN}` },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
  };
}
