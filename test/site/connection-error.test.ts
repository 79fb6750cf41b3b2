import { describe, expect, it } from 'vitest';
import { describeConnectionError } from '../../engine/live-health/health-collector.ts';

describe('the one line the API and the page give for a connection error', () => {
  it('says what happened instead of node-postgres’s wording for a broken client', () => {
    for (const message of ['Client has encountered a connection error and is not queryable', 'Connection terminated unexpectedly', 'Connection terminated']) {
      const line = describeConnectionError(new Error(message));
      expect(line).toBe('the connection was lost: the server went away');
    }
    expect(describeConnectionError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe('the connection was lost: the server went away');
    expect(describeConnectionError(new Error('Query read timeout'))).toBe('no answer in time: the server is not responding');
  });

  it('keeps a server’s own message, without an address or a URL', () => {
    expect(describeConnectionError(new Error('connect to postgres://u:pw@10.0.0.5:5432/db failed at 10.0.0.5:5432'))).toBe('connect to <url> failed at <host>');
  });
});
