// Reconnect delays: exponential backoff with full jitter, so that clients
// dropped together by one restart do not come back together.

export const BASE_MS = 250;
export const CAP_MS = 5_000;

/**
 * Delay before reconnect attempt `attempt` (0 = first): a uniform pick in
 * [0, min(CAP, BASE * 2^attempt)), added to the server's `retry_after_ms`.
 */
export function backoffDelay(attempt, { retryAfterMs = 0, random = Math.random } = {}) {
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** Math.min(attempt, 20));
  return retryAfterMs + Math.floor(random() * ceiling);
}
