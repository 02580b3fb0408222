// wasi:http/outgoing-handler for the plugin under Node: preview2-shim's, behind
// the same rule the reference host enforces, so the plugin reaches only the
// origins of the connection it acts on.
import { outgoingHandler } from '@bytecodealliance/preview2-shim/http';

let allowed = new Set();

export function allowOrigins(origins) {
  allowed = new Set(origins);
}

function origin(request) {
  const scheme = request.scheme();
  const name = scheme === undefined ? 'https'
    : scheme.tag === 'HTTP' ? 'http'
    : scheme.tag === 'HTTPS' ? 'https'
    : scheme.val;
  return `${name}://${request.authority() ?? ''}`;
}

export const guardedHandler = {
  handle(request, options) {
    const target = origin(request);
    if (!allowed.has(target)) {
      denied.push(target);
      throw { tag: 'HTTP-request-denied' };
    }
    return outgoingHandler.handle(request, options);
  },
};

/** Origins the plugin asked for and was refused. */
export const denied = [];
