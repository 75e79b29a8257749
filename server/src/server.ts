/** Assembles one avatar-sfu server: HTTP(S), signaling, rooms and metrics. Used by main.ts and tests. */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Server as IoServer } from 'socket.io';
import type { Config } from './config.ts';
import { getLogger, type Logger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { RoomManager } from './rooms/RoomManager.ts';
import { SignalingServer } from './signaling/SignalingServer.ts';
import { createApp } from './http/app.ts';
import { loadOrCreateDevCertificate } from './certs.ts';

export interface AvatarServer {
  readonly config: Config;
  readonly rooms: RoomManager;
  readonly metrics: Metrics;
  /** e.g. http://127.0.0.1:3000 */
  readonly httpUrl: string;
  readonly httpsUrl: string | null;
  close(): Promise<void>;
}

/** Room for protocol overhead above MAX_MESSAGE_BYTES: bigger frames are refused by engine.io itself. */
const MAX_HTTP_BUFFER = 2 * 1024 * 1024;

function listen(server: http.Server | https.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function urlHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
}

export async function createAvatarServer(config: Config, logger: Logger = getLogger()): Promise<AvatarServer> {
  const metrics = new Metrics();
  const rooms = new RoomManager(config, logger, metrics);
  const app = createApp({ clientDir: config.clientDir, rooms, metrics, logger, startedAt: Date.now() });

  const httpServer = http.createServer(app);
  const servers: (http.Server | https.Server)[] = [httpServer];
  let httpsServer: https.Server | undefined;
  if (config.httpsPort !== null) {
    const tls = await loadOrCreateDevCertificate(config.tls, logger);
    if (tls) {
      httpsServer = https.createServer({ cert: tls.cert, key: tls.key }, app);
      servers.push(httpsServer);
    }
  }
  const ios = servers.map((s) => new IoServer(s, { maxHttpBufferSize: MAX_HTTP_BUFFER, serveClient: false, pingInterval: 10_000, pingTimeout: 8_000 }));
  const signaling = new SignalingServer(ios, rooms, config, logger, metrics);

  const httpPort = await listen(httpServer, config.httpPort, config.host);
  const httpsPort = httpsServer ? await listen(httpsServer, config.httpsPort ?? 0, config.host) : null;
  const httpUrl = `http://${urlHost(config.host)}:${httpPort}`;
  const httpsUrl = httpsPort === null ? null : `https://${urlHost(config.host)}:${httpsPort}`;

  let closing: Promise<void> | undefined;
  return {
    config,
    rooms,
    metrics,
    httpUrl,
    httpsUrl,
    close() {
      closing ??= (async () => {
        signaling.close();
        rooms.close();
        await Promise.all(ios.map((io) => new Promise<void>((r) => io.close(() => r()))));
        for (const s of servers) s.closeAllConnections?.();
        await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
      })();
      return closing;
    },
  };
}
