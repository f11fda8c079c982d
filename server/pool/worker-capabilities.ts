// What a worker with plugins needs from the platform at launch, besides its
// release: the channel to ask for capabilities (mail) and a one-time ticket
// for its plugins' keys. The pool asks for them; how they are provided is the
// app's business (server/mail/capability-server.ts).

export interface LaunchCapabilities {
  /** Variables added to the worker's environment (TENANTRY_*; the runtime removes them before any other code runs). */
  readonly env: Readonly<Record<string, string>>;
  /** The platform-owned folder that holds the tenant's channel socket, made visible inside the sandbox. */
  readonly dir: string;
}

export interface WorkerCapabilities {
  /** Ready to be used by a worker of the tenant that runs these plugins (listening, ticket issued). */
  prepare(tenantId: string, plugins: readonly string[]): Promise<LaunchCapabilities>;
}
