// TypeScript declarations of parley's client SDK (/sdk/parley.js), served
// at /sdk/parley.d.ts by the same server. docs/sdk.md is the guide; the
// frames are those of docs/api.md ("WebSocket protocol").

/** The SDK's version; it ships with the server that serves it. */
export declare const version: string;

// ------------------------------------------------------------ wire frames

export type RoomId = string;
export type UserId = string;

/** A `message` frame (also a REST history item, which adds the folded state). */
export interface MessageEvent {
  type: 'message';
  room: RoomId;
  seq: number;
  id: string;
  author: UserId;
  body: string;
  ts: string;
  client_id: string;
  reply_to?: number | null;
}

export interface EditEvent {
  type: 'edit';
  room: RoomId;
  seq: number;
  id: string;
  target: number;
  body: string;
  author: UserId;
  ts: string;
  client_id: string;
}

export interface DeleteEvent {
  type: 'delete';
  room: RoomId;
  seq: number;
  id: string;
  target: number;
  by: UserId;
  ts: string;
  client_id: string;
}

export interface ReactionEvent {
  type: 'reaction';
  room: RoomId;
  seq: number;
  id: string;
  target: number;
  emoji: string;
  user: UserId;
  on: boolean;
  /** How many users hold the emoji once this event applied. */
  count?: number;
  ts: string;
  client_id: string;
}

/** The four kinds that share a room's seq. */
export type RoomEvent = MessageEvent | EditEvent | DeleteEvent | ReactionEvent;

/** Your own read cursor moved (this session, another, or REST). */
export interface ReadEvent {
  type: 'read';
  room: RoomId;
  seq: number;
}

/** Another member's read cursor (private and direct rooms only). */
export interface ReceiptEvent {
  type: 'receipt';
  room: RoomId;
  user: UserId;
  seq: number;
}

export interface PresenceEvent {
  type: 'presence';
  room: RoomId;
  user: UserId;
  state: 'online' | 'offline';
}

export interface TypingEvent {
  type: 'typing';
  room: RoomId;
  user: UserId;
}

export interface NotificationEvent {
  type: 'notification';
  id: string;
  kind: string;
  payload: Record<string, unknown> & { room?: RoomId; seq?: number; excerpt?: string };
  ts: string;
}

/** The server ended a subscription (`reason`: `banned`, `removed`), or answered an unsubscribe. */
export interface UnsubscribedEvent {
  type: 'unsubscribed';
  room: RoomId;
  reason?: string | null;
  ref?: string | null;
}

/** Retention purged the room's events below `first_seq`; a replay continues from there. */
export interface TruncatedEvent {
  type: 'truncated';
  room: RoomId;
  first_seq: number;
}

export interface Hello {
  type: 'hello';
  session: string;
  instance: string;
  user: UserId;
  heartbeat_ms: number;
  /** The wire contract the server speaks (`1.1`); absent from servers before 1.1. */
  protocol?: string;
}

/** The answer to an event frame: the event is durable. */
export interface Ack {
  type: 'ack';
  room: RoomId;
  seq: number;
  id: string;
  client_id: string;
  /** The message an edit, delete or reaction applied to; null for a publish. */
  target: number | null;
  ref?: string | null;
}

// ------------------------------------------------------------------ errors

export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable'
  | 'internal'
  | 'network'
  | 'closed'
  | (string & {});

export declare class ParleyError extends Error {
  constructor(
    code: ErrorCode,
    message?: string,
    extra?: { status?: number | null; problem?: unknown; retryAfterMs?: number | null },
  );
  readonly code: ErrorCode;
  /** The HTTP status of a failed REST call, else null. */
  readonly status: number | null;
  /** The problem+json body of a failed REST call, else null. */
  readonly problem: unknown;
  readonly retryAfterMs: number | null;
}

// -------------------------------------------------------------- timeline

export interface Reaction {
  emoji: string;
  count: number;
  me: boolean;
}

/** A message with every edit, delete and reaction folded in. */
export interface MessageView {
  seq: number;
  id: string;
  author: UserId;
  body: string;
  ts: string;
  client_id: string;
  reply_to: number | null;
  edited_at: string | null;
  deleted: boolean;
  reactions: Reaction[];
}

/** A REST history item: a message in its current (folded) state. */
export interface HistoryItem extends Omit<MessageEvent, 'type'> {
  type?: 'message';
  reply_to: number | null;
  edited_at: string | null;
  deleted: boolean;
  reactions: Reaction[];
}

export interface HistoryPage {
  items: HistoryItem[];
  next_cursor: string | null;
}

/** The seq of the message an event shows on: its own, or its target's. */
export declare function targetOf(event: RoomEvent | HistoryItem): number;
/** A reply's preview of its target: the first ~80 characters, or that it is gone. */
export declare function quoteText(view: MessageView | null): string;

/** One room's events folded by seq; each seq is held once. */
export declare class Timeline {
  constructor(me?: UserId);
  me: UserId | undefined;
  /** Every seq up to here is held; the `since` to resubscribe with. Null until known. */
  top: number | null;
  /** Whether REST history has older pages. */
  hasOlder: boolean;
  /** Folds one event in; false when its seq is already held. */
  add(event: RoomEvent | HistoryItem): boolean;
  addQuoted(item: HistoryItem): boolean;
  shows(seq: number): boolean;
  /** Message `seq` as it is now, or null. */
  view(seq: number): MessageView | null;
  completeTo(seq: number): void;
  /** Drops what retention purged below `firstSeq` (a `truncated` frame). */
  truncate(firstSeq: number): void;
  readonly hasGap: boolean;
  readonly maxSeq: number;
  readonly minSeq: number | null;
  /** The messages, folded, in seq order. */
  sorted(): MessageView[];
  /** What the server counts as unread after cursor `read`, or null when not covered. */
  unreadAfter(read: number, me?: UserId): number | null;
}

/** Unread counts per room, from the server's numbers and live frames. */
export declare class Unread {
  count(room: RoomId): number;
  readOf(room: RoomId): number;
  seenOf(room: RoomId): number;
  total(except?: RoomId | null): number;
  server(room: RoomId, counts: { unread?: number; read_seq?: number; last_seq?: number }): 'ok' | 'recount';
  none(room: RoomId): void;
  set(room: RoomId, n: number, upTo: number): void;
  message(room: RoomId, event: { seq: number; author: UserId }, me?: UserId, viewing?: boolean): boolean;
  read(room: RoomId, seq: number): 'ok' | 'recount';
  deleted(room: RoomId, target: number): 'ok' | 'recount';
}

export declare const BASE_MS: number;
export declare const CAP_MS: number;
/** Reconnect delay: full jitter in [0, min(CAP, BASE·2^attempt)), plus `retryAfterMs`. */
export declare function backoffDelay(
  attempt: number,
  options?: { retryAfterMs?: number; random?: () => number },
): number;

/** A fresh idempotency key. */
export declare function newClientId(): string;

// ----------------------------------------------------------------- client

export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'unauthorized'
  | 'closed';

export interface StateEvent {
  state: ConnectionState;
  /** On `reconnecting`: the close code that caused it (1012 for a drain), or null. */
  closeCode?: number | null;
  /** On `reconnecting`: the wait before the next attempt. */
  delayMs?: number;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string | null;
  /** Epoch milliseconds; refreshed ahead of it when known. */
  expiresAt?: number;
  user?: User;
}

export interface User {
  id: UserId;
  username?: string;
  display_name?: string;
  [field: string]: unknown;
}

/** A WebSocket constructor: the browser's, Node 22's, or `ws`'s default export. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

interface ClientOptionsBase {
  /** The server, e.g. `https://chat.example.com`; defaults to the page's origin in a browser. */
  baseUrl?: string;
  /** Required where there is no global WebSocket (Node 20): e.g. `import WebSocket from 'ws'`. */
  WebSocket?: WebSocketConstructor | (abstract new (...args: any[]) => any);
  /** Another fetch (tests, proxies). */
  fetch?: typeof fetch;
}
export interface PasswordOptions extends ClientOptionsBase {
  username: string;
  password: string;
  tokens?: undefined;
}
export interface TokenOptions extends ClientOptionsBase {
  tokens: Tokens;
  username?: undefined;
  password?: undefined;
}
export type ClientOptions = PasswordOptions | TokenOptions;

export interface RoomEvents {
  message: MessageEvent;
  edit: EditEvent;
  delete: DeleteEvent;
  reaction: ReactionEvent;
  /** Seqs whose shown state changed (new, edited, deleted, reacted to). */
  timeline: { room: RoomId; seqs: number[] };
  read: ReadEvent;
  receipt: ReceiptEvent;
  presence: PresenceEvent;
  typing: TypingEvent;
  unsubscribed: UnsubscribedEvent;
  truncated: TruncatedEvent;
}

export interface UnreadCounts {
  total: number;
  rooms: Record<RoomId, number>;
}

export interface ClientEvents {
  state: StateEvent;
  hello: Hello;
  message: MessageEvent;
  edit: EditEvent;
  delete: DeleteEvent;
  reaction: ReactionEvent;
  read: ReadEvent;
  receipt: ReceiptEvent;
  presence: PresenceEvent;
  typing: TypingEvent;
  notification: NotificationEvent;
  unsubscribed: UnsubscribedEvent;
  truncated: TruncatedEvent;
  /** An `error` frame not tied to a call (e.g. a failed replay). */
  error: ParleyError;
  unread: UnreadCounts;
  /** New tokens after a login or refresh (store them to resume later). */
  tokens: Tokens;
}

export interface SubscribeOptions {
  /** Replay every event after this seq (0: the whole room) instead of loading the newest page. */
  since?: number;
  /** The size of the first history page (default 50). */
  limit?: number;
}

export interface HistoryQuery {
  beforeSeq?: number;
  afterSeq?: number;
  limit?: number;
  replyTo?: number;
}

export interface EventOptions {
  /** The idempotency key; fresh by default. Reuse it only to retry the same event. */
  clientId?: string;
}

/** Not exported as a value: get one from client.room(id). */
export interface Room {
  readonly id: RoomId;
  readonly timeline: Timeline;
  /** Users seen online here since the subscription. */
  readonly online: Set<UserId>;
  /** Why the server ended the subscription (`banned`, `removed`), or null. */
  readonly closedReason: string | null;
  /** The unread count as the client knows it. */
  readonly unread: number;
  on<K extends keyof RoomEvents>(type: K, listener: (event: RoomEvents[K]) => void): () => void;
  /** Resolves with the room's seq at subscription, once the first page (if any) is in. */
  subscribe(options?: SubscribeOptions): Promise<number>;
  unsubscribe(): Promise<void>;
  /** The messages, folded, in seq order. */
  messages(): MessageView[];
  publish(body: string, options?: EventOptions & { replyTo?: number | null }): Promise<Ack>;
  edit(target: number, body: string, options?: EventOptions): Promise<Ack>;
  delete(target: number, options?: EventOptions): Promise<Ack>;
  react(target: number, emoji: string, on?: boolean, options?: EventOptions): Promise<Ack>;
  /** Moves the read cursor (default: the newest seq held or acked to this client); resolves with the cursor. */
  markRead(seq?: number): Promise<number>;
  /** False when not connected. */
  typing(): boolean;
  history(query?: HistoryQuery): Promise<HistoryPage>;
  /** Loads an older page into the timeline; false when there is none. */
  loadOlder(limit?: number): Promise<boolean>;
}

export interface RoomInfo {
  id: RoomId;
  name: string;
  kind: 'public' | 'private' | 'direct';
  created_by: UserId;
  created_at: string;
  last_seq?: number;
  read_seq?: number;
  unread?: number;
  [field: string]: unknown;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Not exported as a value: get one from createClient. */
export interface Client {
  readonly baseUrl: string;
  readonly state: ConnectionState;
  /** The last `hello` (its `instance` names the server process). */
  readonly hello: Hello | null;
  /** The signed-in user, known once connected. */
  readonly user: User | null;
  /** Event frames sent or queued and not acked yet, by client_id. */
  readonly pending: ReadonlyMap<string, unknown>;
  on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void;
  /** Logs in if needed and connects; resolves with the first `hello`. */
  connect(): Promise<Hello>;
  /** Closes the socket; pending calls reject with `closed`. */
  close(): void;
  /** Ends this login on the server (its refresh token stops working), then closes. */
  logout(): Promise<void>;
  room(id: RoomId): Room;
  /** Any REST call under /api/v1, with the token handling of the SDK. */
  request<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  listRooms(limit?: number): Promise<Page<RoomInfo>>;
  createRoom(name: string, kind?: 'public' | 'private' | 'direct'): Promise<RoomInfo>;
  addMember(room: RoomId, userId: UserId): Promise<unknown>;
  notifications(limit?: number): Promise<Page<{ id: string; kind: string; payload: unknown; read: boolean; ts: string }>>;
  markNotificationRead(id: string): Promise<unknown>;
  /** Fetches every room's unread count; live frames keep them moving. */
  refreshUnread(): Promise<UnreadCounts>;
  unreadCounts(): UnreadCounts;
}

export declare function createClient(options: ClientOptions): Client;

// ------------------------------------------------------ building blocks
// What `createClient` is made of, for applications that keep their own
// room state but want the SDK's token handling and reconnecting socket.

export interface SessionOptions {
  /** The server; `''` for the page's own origin. */
  baseUrl: string;
  fetch: typeof fetch;
  /** Logged in with when there are no tokens (or they are spent). */
  credentials?: { username: string; password: string } | null;
  tokens?: Tokens | null;
  /** After every login and refresh: keep them to start from next time. */
  onTokens?: (tokens: Tokens) => void;
  /** The session ended: a refresh was refused, or there was nothing to log in with. */
  onUnauthorized: (error: ParleyError) => void;
}

/** The token pair and every REST call (refreshing, one refresh at a time). */
export declare class Session {
  constructor(options: SessionOptions);
  readonly user: User | null;
  readonly tokens: Tokens | null;
  /** Signs in with a `/auth/login` or `/auth/register` body; keeps the tokens. */
  signIn(path: '/auth/login' | '/auth/register', body: Record<string, unknown>): Promise<User | null>;
  /** Ends this login on the server (best effort) and stops refreshing. */
  logout(): Promise<void>;
  /** A usable access token; `stale` is one the server just refused. */
  token(options?: { stale?: string }): Promise<string>;
  /** An authenticated JSON request under `/api/v1`, retried once on 401. */
  request<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  me(): Promise<User>;
  /** Stops refreshing. */
  close(): void;
}

export interface ConnectionOptions {
  /** `ws://host/ws` or `wss://host/ws`. */
  url: string;
  WebSocket: WebSocketConstructor | (abstract new (...args: any[]) => any);
  /** A fresh single-use ticket for each connection (POST /api/v1/ws-ticket). */
  ticket: () => Promise<string>;
  /** After each `hello`: subscribe again, resend what is pending. */
  onReady: (hello: Hello) => void;
  /** Every frame but `hello`, `reconnect` and `pong`. */
  onFrame: (frame: { type: string; [field: string]: unknown }) => void;
  onState: (state: ConnectionState, detail?: Omit<StateEvent, 'state'> | Hello) => void;
}

/** One WebSocket that reconnects by itself with jittered backoff. */
export declare class Connection {
  constructor(options: ConnectionOptions);
  start(): void;
  /** Closes and stops reconnecting; reports `state` (default `closed`). */
  stop(state?: ConnectionState | (string & {})): void;
  /** Sends a frame; false when not connected (resend after `onReady`). */
  send(frame: { type: string; [field: string]: unknown }): boolean;
  /** Tries now rather than at the end of a backoff (e.g. back online). */
  wake(): void;
}
