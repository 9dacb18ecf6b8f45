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
 * answered without the replica), and on 401 prompts until a valid token is given, saying why the last one was
 * refused. With ACLs off it answers 200 and nothing is asked. `ask`: prompt even if the held token is accepted (the
 * user asked for another one, e.g. after the gateway ended the feed because the token lost its access).
 *
 * Resolves `{ ok: true }` once a token is accepted (or none is needed). When the user cancels the prompt:
 * `{ ok: false, refusal }` with the gateway's last `{ code, message }` for the page to show (null if it was not
 * asked since `ask`).
 */
export async function ensureToken({ ask = false } = {}) {
  let message = 'This gateway requires an access token (ACLs are on). Paste a token secret:';
  let refusal = null;
  for (let first = true; ; first = false) {
    if (!(ask && first)) {
      const res = await fetch('/v1/agent/self', { headers: authHeaders(), signal: AbortSignal.timeout(10_000) });
      if (res.status !== 401) return { ok: true };
      const body = await res.json().catch(() => null);
      refusal = { code: body?.code ?? 'SB_UNAUTHENTICATED', message: body?.message ?? `HTTP ${res.status}` };
      if (!first)
        message = `The gateway refused that token (${refusal.code}: ${refusal.message}). Paste a token secret:`;
    }
    const given = window.prompt(message, '');
    if (given === null || given.trim() === '') {
      if (!(ask && first)) sessionStorage.removeItem(KEY);
      return { ok: false, refusal };
    }
    sessionStorage.setItem(KEY, given.trim());
  }
}
