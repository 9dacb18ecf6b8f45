// The dashboard's token, for gateways with ACLs on: asked for once (when the gateway answers 401) and kept in
// sessionStorage, so it lives as long as the tab and never lands on disk. Sent as Authorization: Bearer on every
// request, and as ?token= on the WebSocket (a browser cannot set headers there).

const KEY = 'switchboard-token';

export function token() {
  return sessionStorage.getItem(KEY) ?? '';
}

/** Headers that carry the token (none when there is no token: a gateway with ACLs off). */
export function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/**
 * Makes sure the page holds a token the gateway accepts: asks a cheap route that needs any token (`/v1/agent/self`,
 * answered without the replica), and on 401 prompts until a valid token is given (or the user cancels). With ACLs
 * off it answers 200 and nothing is asked.
 */
export async function ensureToken() {
  let message = 'This gateway requires an access token (ACLs are on). Paste a token secret:';
  for (;;) {
    const res = await fetch('/v1/agent/self', { headers: authHeaders(), signal: AbortSignal.timeout(10_000) });
    if (res.status !== 401) return;
    const given = window.prompt(message, '');
    if (given === null || given.trim() === '') {
      sessionStorage.removeItem(KEY);
      return;
    }
    sessionStorage.setItem(KEY, given.trim());
    message = 'The gateway did not accept that token. Paste a token secret:';
  }
}
