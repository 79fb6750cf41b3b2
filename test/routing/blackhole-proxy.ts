import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a PostgreSQL server that can stop forwarding without closing
 * anything: bytes in both directions are dropped, and new connections are accepted and then ignored.
 * That is what a network partition or a hung load balancer looks like to a client — no refusal, no
 * reset, just silence — which a stopped server (a clean close) does not reproduce.
 */
export interface BlackholeProxy {
  /** The upstream URL with its host and port replaced by the proxy's. */
  readonly url: string;
  /** Drop every byte from now on, on open connections and new ones. */
  blackhole(): void;
  /** Forward again (connections opened while black-holed stay dead, as they would in real life). */
  resume(): void;
  close(): Promise<void>;
}

export async function blackholeProxy(upstreamUrl: string): Promise<BlackholeProxy> {
  const upstream = new URL(upstreamUrl);
  const sockets = new Set<Socket>();
  let forwarding = true;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };

  const server: Server = createServer((client) => {
    track(client);
    if (!forwarding) return; // accepted, never answered
    const server = connect(Number(upstream.port || 5432), upstream.hostname);
    track(server);
    let dead = false;
    client.on('data', (chunk) => {
      if (forwarding && !dead) server.write(chunk);
      else dead = true;
    });
    server.on('data', (chunk) => {
      if (forwarding && !dead) client.write(chunk);
      else dead = true;
    });
    // Closes are forwarded only while forwarding: a black hole tells nobody anything.
    client.on('close', () => forwarding && server.destroy());
    server.on('close', () => forwarding && client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const url = new URL(upstreamUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);

  return {
    url: url.toString(),
    blackhole: () => {
      forwarding = false;
    },
    resume: () => {
      forwarding = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
