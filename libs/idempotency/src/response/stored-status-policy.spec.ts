import { describe, expect, it } from '@jest/globals';
import { defaultStoreResponse } from './stored-status-policy.js';

describe('defaultStoreResponse', () => {
  it.each([200, 201, 202, 204, 301, 302, 402, 404, 410, 422])(
    'stores a %i response so a retry replays it (R14)',
    (status) => {
      expect(defaultStoreResponse(status)).toBe(true);
    },
  );

  it.each([400, 401, 403, 408, 409, 423, 425, 429])(
    'does not store a %i, which means the request never really ran, so the key is released (R14)',
    (status) => {
      expect(defaultStoreResponse(status)).toBe(false);
    },
  );

  it.each([500, 502, 503, 504])('does not store a %i server error, so the client may retry with the same key (R14)', (status) => {
    expect(defaultStoreResponse(status)).toBe(false);
  });
});
