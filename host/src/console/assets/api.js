// Every request of the console goes through request(), so the rules hold in
// one place: the session cookie goes with each request (the token itself is
// never put in a URL or in web storage), every request carries the
// X-Goals-Console header the server checks against cross-site requests, bodies
// are JSON, and problem documents (RFC 9457) become errors people can read.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `The server answered with status ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.kind = problem.kind || null;
    this.problem = problem;
  }
}

// Called when an API request answers 401: the session ended (expired, or its
// token was revoked). The session endpoints answer 401 as part of their work,
// so they do not count.
let sessionEnded = () => {};

export function onSessionEnded(callback) {
  sessionEnded = callback;
}

export async function request(method, path, body, { signal } = {}) {
  const headers = { 'X-Goals-Console': '1', Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, { detail: 'The server could not be reached. Check your network and try again.' });
  }
  const text = response.status === 204 ? '' : await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith('/console/')) sessionEnded();
    const problem = data && typeof data === 'object' ? data : {};
    throw new ApiError(response.status, problem);
  }
  return data;
}

export const api = {
  get: (path, options) => request('GET', path, undefined, options),
  post: (path, body) => request('POST', path, body),
  put: (path, body) => request('PUT', path, body),
  patch: (path, body) => request('PATCH', path, body),
  delete: (path) => request('DELETE', path),
};

// A path with every interpolated piece percent-encoded, so an id or a search
// text can never change which endpoint is called:
// url`/api/v1/connections/${id}/apps`.
export function url(strings, ...values) {
  return strings.reduce(
    (out, piece, i) => out + piece + (i < values.length ? encodeURIComponent(values[i]) : ''),
    '',
  );
}

// What to tell people about a failed request or a bug.
export function describe(error) {
  if (error instanceof ApiError) return error.message;
  return `Something went wrong in the console: ${error && error.message ? error.message : error}`;
}
