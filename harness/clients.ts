/** Real clients for the push transports: a WebSocket (the `ws` package), an SSE reader over fetch, registrations. */
import { WebSocket } from 'ws';
import { http } from './http.ts';
import { waitFor } from './wait.ts';

export function provider(service: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { service, host: '127.0.0.1', port, protocol: 'http', ...extra };
}

/** Registers a provider (no check, so no worker is needed) and returns the acknowledged revision. */
export async function register(
  url: string,
  id: string,
  service: string,
  port: number,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const res = await http('PUT', `${url}/v1/providers/${id}`, provider(service, port, extra));
  if (res.status !== 200 && res.status !== 201)
    throw new Error(`register ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.rev as number;
}

export interface WsClient {
  ws: WebSocket;
  messages: any[];
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the first message (already received or future) matching `pred`. */
  next(pred: (m: any) => boolean, what?: string, timeoutMs?: number): Promise<any>;
  send(value: unknown): void;
  close(): Promise<void>;
}

export async function connectWs(url: string, query = ''): Promise<WsClient> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/watch${query}`);
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse((data as Buffer).toString())));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    closed,
    next: (pred, what = 'message', timeoutMs = 10_000) => waitFor(() => messages.find(pred), { what, timeoutMs }),
    send: (value) => ws.send(typeof value === 'string' ? value : JSON.stringify(value)),
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await closed;
    },
  };
}

export interface SseMessage {
  id?: string;
  event?: string;
  data?: any;
  comment?: string;
}

export interface SseClient {
  status: number;
  headers: Headers;
  messages: SseMessage[];
  next(pred: (m: SseMessage) => boolean, what?: string, timeoutMs?: number): Promise<SseMessage>;
  ended: Promise<void>;
  close(): void;
}

/** An SSE reader on a real HTTP response (fetch), parsing the stream as EventSource would. */
export async function connectSse(url: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const abort = new AbortController();
  const res = await fetch(`${url}${path}`, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  const messages: SseMessage[] = [];
  const ended = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const m: SseMessage = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) m.comment = line.slice(1).trim();
            else if (line.startsWith('id: ')) m.id = line.slice(4);
            else if (line.startsWith('event: ')) m.event = line.slice(7);
            else if (line.startsWith('data: ')) m.data = JSON.parse(line.slice(6));
          }
          messages.push(m);
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    messages,
    ended,
    next: (pred, what = 'SSE message', timeoutMs = 10_000) => waitFor(() => messages.find(pred), { what, timeoutMs }),
    close: () => abort.abort(),
  };
}

/** Revisions of the change events a client received, in arrival order. */
export function revs(
  messages: Array<{ type?: string; event?: string; rev?: number; id?: string; data?: any }>,
): number[] {
  return messages.filter((m) => m.type === 'event').map((m) => m.rev!);
}

export function assertContiguous(list: number[], from: number, to: number): void {
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const ok = list.length === expected.length && list.every((r, i) => r === expected[i]);
  if (!ok) {
    const firstBad = list.findIndex((r, i) => r !== expected[i]);
    throw new Error(
      `revisions not contiguous ${from}..${to}: got ${list.length} (first mismatch at index ${firstBad}: ${list[firstBad]})`,
    );
  }
}
