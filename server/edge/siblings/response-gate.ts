// The platform host's answers wait for the sibling edges: a call that changed
// the routing state (a deploy, a rollback, a domain) ends its response only
// once every edge has applied the change (sibling-hub.ts settled()). Ending is
// what is held back: a JSON answer is sent whole at its end, so the client
// reads the 201 only after every edge serves the new release.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SiblingHub } from './sibling-hub.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function gateOnSiblings(hub: SiblingHub, handler: Handler): Handler {
  return (req, res) => {
    const end = res.end;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      if (!hub.unsettled) return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      void hub.settled().then(() => (end as (...a: unknown[]) => ServerResponse).apply(this, args));
      return this;
    } as ServerResponse['end'];
    handler(req, res);
  };
}
