// The page's replica of the registry, fed by GET /v1/watch: a snapshot, then one event per change. After a lost
// connection it resumes from its last revision (the gateway answers with the missed events, or a new snapshot),
// exactly as the Node client does. Messages are queued and applied once per animation frame, so a burst of events
// costs one render, not one per event.

import { token } from './auth.js';

/** Events kept for the live log (newest first); older ones are dropped. */
export const LOG_LIMIT = 1000;
/** Seconds of event-rate and delay history kept for the charts. */
export const HISTORY_SECONDS = 120;
/** A row stays highlighted this long after a change. */
export const FLASH_MS = 1500;
/** Delay samples kept for the delay chart. */
const DELAY_LIMIT = 2000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 4000;
/** Hidden tabs get no animation frames; queued messages are applied by a timer then. */
const FALLBACK_FLUSH_MS = 250;

export class Feed {
  /** id → provider record, as last seen. */
  providers = new Map();
  /** id → Date.now() of its last change, for the highlight. */
  changedAt = new Map();
  epoch = null;
  rev = 0;
  /** 'connecting' | 'live' | 'reconnecting' | 'refused' (the token was refused: no reconnect until a new one) */
  status = 'connecting';
  /** With status 'refused': `{ code, message }` from the gateway (SB_UNAUTHENTICATED or SB_PERMISSION_DENIED). */
  refusal = null;
  attempts = 0;
  connectedSince = 0;
  snapshots = 0;
  /** Newest first: { rev, change, service, id, state, at, seen }. */
  log = [];
  /** Events per wall-clock second: Map second → count. */
  perSecond = new Map();
  /** { seen, leaderMs, detectMs, change } per event, oldest first. */
  delays = [];
  /** Bumped each time the registry changes; views recompute what they derive from it. */
  version = 0;
  /**
   * Bumped when providers come, go or change anything but their state: a view sorted and filtered by fields other
   * than the state keeps its order across pure state changes (the rows themselves always show the live record).
   */
  structure = 0;
  /** Service name → { name, total, up, down, pending, maintenance }, kept up to date event by event. */
  services = new Map();
  #sortedServices = { structure: -1, list: [] };

  #url;
  #ws = null;
  #queue = [];
  #frame = 0;
  #timer = 0;
  #retry = 0;
  #closed = false;
  #listeners = new Set();

  constructor(url) {
    this.#url = url;
  }

  subscribe(fn) {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Connects, from a snapshot: also after a new token, since what the new token reads may differ from what this
   * page holds.
   */
  start() {
    this.#stop();
    this.status = 'connecting';
    this.refusal = null;
    this.epoch = null;
    this.attempts = 0;
    this.#notify();
    this.#connect();
  }

  /** Stops for good because the gateway refused the token, until `start()` after a new one. */
  refuse(refusal) {
    this.#stop();
    this.status = 'refused';
    this.refusal = refusal;
    this.#notify();
  }

  #stop() {
    clearTimeout(this.#retry);
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000, 'token changed');
  }

  close() {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#ws?.close(1000, 'page closed');
  }

  #connect() {
    const params = new URLSearchParams();
    if (this.epoch) {
      params.set('epoch', this.epoch);
      params.set('rev', String(this.rev));
    }
    // Browsers cannot set headers on a WebSocket: the token (ACLs on) goes in the query.
    if (token()) params.set('token', token());
    const query = params.size ? `?${params}` : '';
    const ws = new WebSocket(`${this.#url}${query}`);
    this.#ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.connectedSince = Date.now();
    };
    ws.onmessage = (m) => {
      this.#queue.push(JSON.parse(m.data));
      this.#schedule();
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      // 4401: the token was deleted; 4403: it no longer reads what this page watches. Retrying would not help.
      if (ev.code === 4401 || ev.code === 4403) {
        let refusal;
        try {
          refusal = JSON.parse(ev.reason);
        } catch {
          refusal = { code: ev.code === 4401 ? 'SB_UNAUTHENTICATED' : 'SB_PERMISSION_DENIED', message: ev.reason };
        }
        return this.refuse(refusal);
      }
      this.#ws = null;
      if (this.#closed) return;
      this.status = 'reconnecting';
      this.attempts++;
      this.#notify();
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(this.attempts - 1, 5));
      this.#retry = setTimeout(() => this.#connect(), delay * (0.75 + Math.random() / 2));
    };
  }

  #schedule() {
    if (!this.#frame) this.#frame = requestAnimationFrame(() => this.#flush());
    if (!this.#timer) this.#timer = setTimeout(() => this.#flush(), FALLBACK_FLUSH_MS);
  }

  #flush() {
    cancelAnimationFrame(this.#frame);
    clearTimeout(this.#timer);
    this.#frame = 0;
    this.#timer = 0;
    const batch = this.#queue;
    this.#queue = [];
    let changed = false;
    for (const m of batch) changed = this.#apply(m) || changed;
    if (changed) this.version++;
    this.#notify();
  }

  #apply(m) {
    switch (m.type) {
      case 'snapshot':
        this.#snapshot(m);
        return true;
      case 'resumed':
        this.status = 'live';
        return false;
      case 'event':
        return this.#event(m);
      case 'error':
        // The gateway refused something we sent; nothing here sends free text, so this is a bug worth seeing.
        console.warn('watch error', m.code, m.message);
        return false;
      default:
        return false;
    }
  }

  #snapshot(m) {
    const now = Date.now();
    const before = this.providers;
    const next = new Map();
    for (const p of m.providers) {
      next.set(p.id, p);
      // A snapshot after a reconnect: highlight what changed while we were away.
      if (this.snapshots > 0 && before.get(p.id)?.rev !== p.rev) this.changedAt.set(p.id, now);
    }
    this.providers = next;
    this.services = new Map();
    for (const p of next.values()) this.#count(p, 1);
    this.structure++;
    this.epoch = m.epoch;
    this.rev = m.rev;
    this.status = 'live';
    this.snapshots++;
  }

  #event(e) {
    if (e.epoch !== this.epoch || e.rev <= this.rev) return false; // a new epoch comes with its own snapshot
    const now = Date.now();
    const p = e.provider;
    const old = this.providers.get(p.id);
    if (old) this.#count(old, -1);
    if (e.change === 'deregistered') this.providers.delete(p.id);
    else {
      this.providers.set(p.id, p);
      this.#count(p, 1);
    }
    if (!old || e.change === 'deregistered' || e.change === 'registered' || e.change === 'updated') this.structure++;
    this.changedAt.set(p.id, now);
    if (this.changedAt.size > 50_000) this.changedAt.clear();
    this.rev = e.rev;
    this.log.unshift({
      rev: e.rev,
      change: e.change,
      service: e.service,
      id: p.id,
      state: p.state,
      at: e.at,
      seen: now,
    });
    if (this.log.length > LOG_LIMIT) this.log.length = LOG_LIMIT;
    const second = Math.floor(now / 1000);
    this.perSecond.set(second, (this.perSecond.get(second) ?? 0) + 1);
    if (this.perSecond.size > HISTORY_SECONDS + 5)
      for (const s of this.perSecond.keys()) if (s < second - HISTORY_SECONDS) this.perSecond.delete(s);
    // Detection: from the check that saw the transition (worker's clock) to this page; assumes synced clocks.
    const detected = (e.change === 'down' || e.change === 'up') && p.lastCheck ? now - p.lastCheck.at : null;
    this.delays.push({ seen: now, leaderMs: now - e.at, detectMs: detected, change: e.change });
    if (this.delays.length > DELAY_LIMIT) this.delays.splice(0, this.delays.length - DELAY_LIMIT);
    return true;
  }

  #count(p, n) {
    let s = this.services.get(p.service);
    if (!s) {
      this.services.set(p.service, (s = { name: p.service, total: 0, up: 0, down: 0, pending: 0, maintenance: 0 }));
      this.structure++;
    }
    s.total += n;
    s[p.state] += n;
    if (s.total === 0) {
      this.services.delete(p.service);
      this.structure++;
    }
  }

  /** Every service with its counts, sorted by name (re-sorted only when services come or go). */
  serviceList() {
    if (this.#sortedServices.structure !== this.structure) {
      const list = [...this.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      this.#sortedServices = { structure: this.structure, list };
    }
    return this.#sortedServices.list;
  }

  #notify() {
    for (const fn of this.#listeners) fn();
  }
}
