import type { ServerResponse } from 'node:http';

/**
 * Server-Sent Events to every open `/api/stream`: each event goes to all clients; a client whose socket
 * stops draining (more than `maxBufferedBytes` queued) is dropped rather than let to grow the server's
 * memory. A comment line every `keepAliveMs` keeps proxies from closing an idle stream.
 */
export interface EventStream {
  /** Takes over the response; `initial` events are sent to this client only. */
  add(res: ServerResponse, initial: readonly { readonly event: string; readonly data: unknown }[]): boolean;
  broadcast(event: string, data: unknown): void;
  readonly size: number;
  close(): void;
}

export function createEventStream(options: { readonly maxClients?: number; readonly keepAliveMs?: number; readonly retryMs?: number; readonly maxBufferedBytes?: number } = {}): EventStream {
  const maxClients = options.maxClients ?? 100;
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const clients = new Set<ServerResponse>();
  const frame = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const send = (res: ServerResponse, text: string): void => {
    if (res.writableLength > maxBuffered) {
      clients.delete(res);
      res.destroy();
      return;
    }
    res.write(text);
  };
  const keepAlive = setInterval(() => {
    for (const res of clients) send(res, `: keep-alive ${new Date().toISOString()}\n\n`);
  }, options.keepAliveMs ?? 15_000);
  keepAlive.unref();
  return {
    add(res, initial) {
      if (clients.size >= maxClients) return false;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        // nginx and friends buffer responses unless told not to; a buffered stream is no stream.
        'x-accel-buffering': 'no',
      });
      res.write(`retry: ${options.retryMs ?? 5000}\n\n`);
      for (const e of initial) res.write(frame(e.event, e.data));
      clients.add(res);
      res.on('close', () => clients.delete(res));
      return true;
    },
    broadcast(event, data) {
      const text = frame(event, data);
      for (const res of clients) send(res, text);
    },
    get size() {
      return clients.size;
    },
    close() {
      clearInterval(keepAlive);
      for (const res of clients) res.end();
      clients.clear();
    },
  };
}
