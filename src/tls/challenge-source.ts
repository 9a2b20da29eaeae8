// What a data plane (the in-process proxy or a worker) needs from the ACME side to answer
// challenges and handshakes. In the primary it reads the certificate store directly; in a worker
// it asks the primary over IPC (workers have no store: test/unit/worker-imports.test.ts).

export interface KeyCert {
  readonly cert: string;
  readonly key: string;
}

export interface ChallengeSource {
  /**
   * The key authorization stored for an HTTP-01 token, if any replica is solving it for `host`
   * (the request's Host without port, lower case): undefined when the host is not the name being
   * validated (a DNS-rebinding guard).
   */
  http01(token: string, host: string): Promise<string | undefined>;
  /** The TLS-ALPN-01 challenge certificate stored for a name, if any replica is solving it. */
  alpn(name: string): Promise<KeyCert | undefined>;
  /**
   * On-demand TLS: a handshake arrived for `name`, which has no certificate here. Resolves with a
   * certificate once one is obtained (or found), undefined when the name is not allowed or the
   * order failed. Absent when on-demand TLS is off: unknown names are then refused at once.
   */
  onDemand?(name: string): Promise<KeyCert | undefined>;
}
