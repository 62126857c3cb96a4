// The one WebSocket to /ws. Reconnects by itself: after a dropped
// connection, a `reconnect` frame (drain) or a silent server, it waits a
// backoff with full jitter (plus the server's `retry_after_ms`) and tries
// again until stopped. Status changes go to `onStatus`: "connecting",
// "connected", "reconnecting" or "offline".

import { backoffDelay } from './backoff.js';

export class ChatSocket {
  /**
   * @param {object} hooks
   * @param {() => Promise<string>} hooks.ticket a fresh `/ws` ticket (POST /api/v1/ws-ticket)
   * @param {(hello: object) => void} hooks.onReady after each `hello`
   * @param {(frame: object) => void} hooks.onFrame every other frame but `pong`
   * @param {(status: string) => void} hooks.onStatus
   */
  constructor({ ticket, onReady, onFrame, onStatus }) {
    Object.assign(this, { ticketFor: ticket, onReady, onFrame, onStatus });
    this.ws = null;
    this.ready = false;
    this.stopped = true;
    this.attempt = 0;
    this.retryAfterMs = 0;
    this.timer = null;
    this.waiting = false;
    this.watchdog = null;
    // Back online: try now rather than at the end of a long backoff.
    window.addEventListener('online', () => this.#wake());
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.onStatus('connecting');
    this.#connect();
  }

  stop() {
    this.stopped = true;
    this.waiting = false;
    clearTimeout(this.timer);
    this.#detach(1000);
    this.onStatus('offline');
  }

  /** Sends a frame; false when not connected (the caller retries after onReady). */
  send(frame) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  #wake() {
    if (this.stopped || !this.waiting) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.#connect();
  }

  async #connect() {
    this.waiting = false;
    let ticket;
    try {
      ticket = await this.ticketFor();
    } catch {
      this.#retry();
      return;
    }
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.onmessage = (event) => this.#receive(event);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.#detach();
      this.#retry();
    };
  }

  #receive(event) {
    this.lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'hello':
        this.attempt = 0;
        this.ready = true;
        this.#watch(frame.heartbeat_ms);
        this.onStatus('connected');
        this.onReady(frame);
        break;
      case 'reconnect':
        // The instance is draining and will close with 1012: leave now.
        this.retryAfterMs = frame.retry_after_ms ?? 0;
        this.#detach(1000);
        this.#retry();
        break;
      case 'pong':
        break;
      default:
        this.onFrame(frame);
    }
  }

  /** Pings each heartbeat; a server silent for 2.5 heartbeats is gone. */
  #watch(heartbeatMs) {
    const every = Math.max(1000, heartbeatMs || 15_000);
    this.lastHeard = Date.now();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeard > every * 2.5) {
        this.#detach(4000);
        this.#retry();
        return;
      }
      this.send({ type: 'ping' });
    }, every);
  }

  #detach(code) {
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    this.ready = false;
    ws.onmessage = ws.onclose = null;
    if (code && ws.readyState <= WebSocket.OPEN) ws.close(code);
  }

  #retry() {
    if (this.stopped) return;
    this.onStatus('reconnecting');
    const delay = backoffDelay(this.attempt, { retryAfterMs: this.retryAfterMs });
    this.attempt += 1;
    this.retryAfterMs = 0;
    clearTimeout(this.timer);
    this.waiting = true;
    this.timer = setTimeout(() => this.#connect(), delay);
  }
}
