import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { ConfigError, PROJECT_ROOT, loadConfig, type Config } from '../../server/src/config.ts';
import { ConfigError as WorkerConfigError, loadWorkerConfig } from '../../worker/src/config.ts';
import { GENERATOR_KINDS } from '../../protocol/src/generators.ts';
import { loadOrCreateDevCertificate } from '../../server/src/certs.ts';
import { createAvatarServer } from '../../server/src/server.ts';
import { SIGNALING_PROTOCOL_VERSION } from '../../protocol/src/signaling.ts';

/** A pino logger whose JSON lines are kept for assertions. */
function captureLogger(): { logger: Logger; lines: () => { level: number; msg: string }[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  return {
    logger,
    lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

function httpsGet(url: string): Promise<{ status: number; body: string; contentType: string | undefined; peerCert: Buffer }> {
  return new Promise((resolve, reject) => {
    const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: false });
    const req = https.get(url, { agent }, (res) => {
      const peerCert = (res.socket as TLSSocket).getPeerCertificate().raw;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        agent.destroy();
        resolve({ status: res.statusCode ?? 0, body, contentType: res.headers['content-type'], peerCert });
      });
    });
    req.on('error', (err) => {
      agent.destroy();
      reject(err);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

function assertFields(actual: object, expected: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(expected)) assert.deepEqual((actual as Record<string, unknown>)[k], v, k);
}

describe('loadConfig', () => {
  test('loadConfig with an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.httpPort, 3000);
    assert.equal(c.httpsPort, 3443);
    assert.equal(c.tls.certFile, path.join(PROJECT_ROOT, 'certs/dev-cert.pem'));
    assert.equal(c.tls.keyFile, path.join(PROJECT_ROOT, 'certs/dev-key.pem'));
    assert.equal(c.tls.generateIfMissing, true);
    assert.equal(c.rtc.listenIp, undefined);
    assert.equal(c.rtc.announcedIp, undefined);
    assert.equal(c.rtc.portRange, undefined);
    assert.equal(c.rtc.voiceAudioPtimeMs, 10);
    assert.equal(c.rtc.iceConsentTimeoutMs, 30_000);
    assert.equal(c.limits.reconnectGraceMs, 20_000);
    assert.equal(c.workers.voiceInput, 'tap');
    assert.equal(c.workers.generator, 'mesh');
    assert.equal(c.workers.startTimeoutMs, 15_000);
    // Fields checked one by one: other sections and fields may be added to Config.
    assertFields(c.limits, {
      maxPeersPerRoom: 16,
      maxRooms: 100,
      messagesPerSecond: 50,
      messageBurst: 100,
      abuseDisconnectThreshold: 500,
      pacerBitrateBps: 50_000_000,
      pacerMaxQueuePackets: 2000,
    });
    assert.equal(c.clientDir, path.join(PROJECT_ROOT, 'dist/client'));
    assert.equal(c.logLevel, 'info');
  });

  test('loadConfig reads every variable from the environment', () => {
    const c = loadConfig({
      HOST: '127.0.0.1',
      PORT: '8080',
      HTTPS_PORT: '8443',
      TLS_CERT: '/etc/avatar/cert.pem',
      TLS_KEY: 'relative/key.pem',
      TLS_GENERATE: 'false',
      RTC_LISTEN_IP: '10.0.0.5',
      RTC_ANNOUNCED_IP: '203.0.113.7',
      RTC_MIN_PORT: '40000',
      RTC_MAX_PORT: '40100',
      RTC_VOICE_PTIME_MS: '20',
      RTC_ICE_CONSENT_TIMEOUT_MS: '5000',
      RECONNECT_GRACE_MS: '0',
      AVATAR_VOICE_INPUT: 'track',
      MAX_PEERS_PER_ROOM: '4',
      MAX_ROOMS: '7',
      SIGNALING_MSGS_PER_S: '20',
      SIGNALING_BURST: '30',
      SIGNALING_ABUSE_DISCONNECT: '40',
      PACER_BITRATE_BPS: '2000000',
      PACER_MAX_QUEUE: '500',
      CLIENT_DIR: '/srv/client',
      LOG_LEVEL: 'debug',
    });
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.httpPort, 8080);
    assert.equal(c.httpsPort, 8443);
    assert.equal(c.tls.certFile, '/etc/avatar/cert.pem');
    assert.equal(c.tls.keyFile, path.join(PROJECT_ROOT, 'relative/key.pem'), 'relative paths resolve against the project root');
    assert.equal(c.tls.generateIfMissing, false);
    assertFields(c.rtc, { listenIp: '10.0.0.5', announcedIp: '203.0.113.7', portRange: [40000, 40100], voiceAudioPtimeMs: 20, iceConsentTimeoutMs: 5000 });
    assert.equal(c.limits.reconnectGraceMs, 0);
    assert.equal(c.workers.voiceInput, 'track');
    assertFields(c.limits, {
      maxPeersPerRoom: 4,
      maxRooms: 7,
      messagesPerSecond: 20,
      messageBurst: 30,
      abuseDisconnectThreshold: 40,
      pacerBitrateBps: 2_000_000,
      pacerMaxQueuePackets: 500,
    });
    assert.equal(c.clientDir, '/srv/client');
    assert.equal(c.logLevel, 'debug');
  });

  test('AVATAR_GENERATOR accepts every generator kind in the registry, and the worker config refuses an unknown one before any worker starts', () => {
    for (const kind of GENERATOR_KINDS) assert.equal(loadConfig({ AVATAR_GENERATOR: kind }).workers.generator, kind);
    assert.throws(() => loadWorkerConfig({ AVATAR_WORKER_SERVER_URL: 'http://127.0.0.1:1', AVATAR_WORKER_TOKEN: 't', AVATAR_GENERATOR: 'foo' }), WorkerConfigError);
  });

  test('HTTPS_PORT=off disables HTTPS and PORT=0 asks for an ephemeral port', () => {
    const c = loadConfig({ HTTPS_PORT: 'off', PORT: '0' });
    assert.equal(c.httpsPort, null);
    assert.equal(c.httpPort, 0);
  });

  test('blank variables and surrounding whitespace fall back to defaults or are trimmed', () => {
    const c = loadConfig({ PORT: '', HOST: '   ', LOG_LEVEL: ' warn ', RTC_LISTEN_IP: ' 127.0.0.1 ' });
    assert.equal(c.httpPort, 3000);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.rtc.listenIp, '127.0.0.1');
  });

  test('setting only one end of the RTC port range uses the default for the other end', () => {
    assert.deepEqual(loadConfig({ RTC_MIN_PORT: '45000' }).rtc.portRange, [45000, 49999]);
    assert.deepEqual(loadConfig({ RTC_MAX_PORT: '41000' }).rtc.portRange, [40000, 41000]);
  });

  test('loadConfig overrides replace whole top-level sections', () => {
    const base = loadConfig({});
    const c = loadConfig({ PORT: '1234' }, { httpPort: 0, limits: { ...base.limits, maxPeersPerRoom: 2 } });
    assert.equal(c.httpPort, 0);
    assert.equal(c.limits.maxPeersPerRoom, 2);
    assert.equal(c.limits.maxRooms, base.limits.maxRooms);
  });

  test('loadConfig reads process.env when given no environment', () => {
    const saved = process.env['MAX_ROOMS'];
    process.env['MAX_ROOMS'] = '3';
    try {
      assert.equal(loadConfig().limits.maxRooms, 3);
    } finally {
      if (saved === undefined) delete process.env['MAX_ROOMS'];
      else process.env['MAX_ROOMS'] = saved;
    }
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{ PORT: 'abc' }, /PORT=abc/],
    [{ PORT: '70000' }, /PORT=70000 must be an integer in \[0, 65535\]/],
    [{ PORT: '-1' }, /PORT=-1/],
    [{ PORT: '80.5' }, /PORT=80\.5/],
    [{ HTTPS_PORT: 'on' }, /HTTPS_PORT=on/],
    [{ RTC_MIN_PORT: '41000', RTC_MAX_PORT: '40000' }, /RTC_MAX_PORT \(40000\) < RTC_MIN_PORT \(41000\)/],
    [{ RTC_MIN_PORT: '80' }, /RTC_MIN_PORT=80/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL=loud is not a log level/],
    [{ MAX_PEERS_PER_ROOM: '0' }, /MAX_PEERS_PER_ROOM=0/],
    [{ SIGNALING_MSGS_PER_S: 'NaN' }, /SIGNALING_MSGS_PER_S=NaN/],
    [{ PACER_BITRATE_BPS: '1000' }, /PACER_BITRATE_BPS=1000 must be an integer in \[100000, /],
    [{ PACER_MAX_QUEUE: 'Infinity' }, /PACER_MAX_QUEUE=Infinity/],
    [{ RTC_VOICE_PTIME_MS: '15' }, /RTC_VOICE_PTIME_MS=15 must be one of 10, 20, 40, 60/],
    [{ AVATAR_VOICE_INPUT: 'mic' }, /AVATAR_VOICE_INPUT=mic must be one of tap, track/],
    [{ AVATAR_GENERATOR: 'foo' }, new RegExp(`AVATAR_GENERATOR=foo must be one of ${GENERATOR_KINDS.join(', ')}`)],
    [{ AVATAR_START_TIMEOUT_MS: '0' }, /AVATAR_START_TIMEOUT_MS=0 must be an integer/],
  ];
  for (const [env, message] of bad) {
    test(`loadConfig refuses ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} with a ConfigError`, () => {
      assert.throws(() => loadConfig(env), (err: unknown) => {
        assert.ok(err instanceof ConfigError, `got ${String(err)}`);
        assert.equal(err.name, 'ConfigError');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('development certificate', () => {
  let dir: string;
  let tls: Config['tls'];

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'avatar-sfu-certs-'));
    tls = { certFile: path.join(dir, 'nested', 'cert.pem'), keyFile: path.join(dir, 'nested', 'key.pem'), generateIfMissing: true };
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the dev certificate is generated on first start, with a private key only the owner can read', async () => {
    const { logger, lines } = captureLogger();
    const material = await loadOrCreateDevCertificate(tls, logger);
    assert.ok(material);
    assert.match(material.cert, /^-----BEGIN CERTIFICATE-----/);
    assert.match(material.key, /-----BEGIN (RSA )?PRIVATE KEY-----/);
    assert.equal(await fs.readFile(tls.certFile, 'utf8'), material.cert);
    assert.equal(await fs.readFile(tls.keyFile, 'utf8'), material.key);
    assert.equal((await fs.stat(tls.keyFile)).mode & 0o077, 0, 'key file is not group/world readable');
    assert.ok(lines().some((l) => l.msg === 'generated self-signed development certificate'));

    const x509 = new crypto.X509Certificate(material.cert);
    assert.ok(x509.checkPrivateKey(crypto.createPrivateKey(material.key)), 'key matches certificate');
    assert.match(x509.subjectAltName ?? '', /DNS:localhost/);
    assert.match(x509.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.ok(new Date(x509.validTo).getTime() > Date.now() + 300 * 86_400_000, 'valid for about a year');
  });

  test('the dev certificate is reused on the next start, not regenerated', async () => {
    const first = await fs.readFile(tls.certFile, 'utf8');
    const { logger, lines } = captureLogger();
    const material = await loadOrCreateDevCertificate(tls, logger);
    assert.equal(material?.cert, first);
    assert.equal(lines().length, 0, 'nothing generated, nothing logged');
  });

  test('with generation disabled and no certificate, HTTPS is off and a warning is logged', async () => {
    const { logger, lines } = captureLogger();
    const missing = { certFile: path.join(dir, 'none', 'c.pem'), keyFile: path.join(dir, 'none', 'k.pem'), generateIfMissing: false };
    assert.equal(await loadOrCreateDevCertificate(missing, logger), null);
    assert.ok(lines().some((l) => l.level === 40 && /HTTPS off/.test(l.msg)));
    await assert.rejects(fs.access(path.join(dir, 'none')), 'no directory created');
  });

  test('an unreadable certificate path is an error, not a silent regeneration', async () => {
    const { logger } = captureLogger();
    // A directory where the certificate file should be: EISDIR, not ENOENT.
    const broken = { certFile: dir, keyFile: tls.keyFile, generateIfMissing: true };
    await assert.rejects(loadOrCreateDevCertificate(broken, logger), /EISDIR/);
  });

  test('an HTTPS server started with the generated certificate answers /api/health', async () => {
    const certBefore = await fs.readFile(tls.certFile, 'utf8');
    const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', HTTPS_PORT: '0', LOG_LEVEL: 'silent' }, { tls });
    const server = await createAvatarServer(config, pino({ level: 'silent' }));
    try {
      assert.ok(server.httpsUrl, 'HTTPS enabled');
      assert.match(server.httpsUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(server.httpsUrl.split(':')[2], '0');
      const res = await httpsGet(`${server.httpsUrl}/api/health`);
      assert.equal(res.status, 200);
      assert.match(res.contentType ?? '', /application\/json/);
      const health = JSON.parse(res.body) as { status: string; protocolVersion: number; uptimeS: number };
      assert.equal(health.status, 'ok');
      assert.equal(health.protocolVersion, SIGNALING_PROTOCOL_VERSION);
      assert.equal(typeof health.uptimeS, 'number');
      assert.ok(res.peerCert.equals(new crypto.X509Certificate(certBefore).raw), 'the server presents the certificate from disk');
      // Plain HTTP keeps working next to HTTPS.
      const plain = await fetch(`${server.httpUrl}/api/health`);
      assert.equal(plain.status, 200);
    } finally {
      await server.close();
    }
    assert.equal(await fs.readFile(tls.certFile, 'utf8'), certBefore, 'starting the server reused the certificate');
  });

  test('a server with a fresh temp directory generates its certificate on start and serves HTTPS', async () => {
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'avatar-sfu-certs-'));
    try {
      const freshTls = { certFile: path.join(fresh, 'c.pem'), keyFile: path.join(fresh, 'k.pem'), generateIfMissing: true };
      const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', HTTPS_PORT: '0' }, { tls: freshTls });
      const server = await createAvatarServer(config, pino({ level: 'silent' }));
      try {
        await fs.access(freshTls.certFile);
        const res = await httpsGet(`${server.httpsUrl}/api/health`);
        assert.equal(res.status, 200);
      } finally {
        await server.close();
      }
    } finally {
      await fs.rm(fresh, { recursive: true, force: true });
    }
  });

  test('a server with HTTPS_PORT=off has no HTTPS URL and does not touch the certificate files', async () => {
    const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', HTTPS_PORT: 'off' }, {
      tls: { certFile: path.join(dir, 'never', 'c.pem'), keyFile: path.join(dir, 'never', 'k.pem'), generateIfMissing: true },
    });
    const server = await createAvatarServer(config, pino({ level: 'silent' }));
    try {
      assert.equal(server.httpsUrl, null);
    } finally {
      await server.close();
    }
    await assert.rejects(fs.access(path.join(dir, 'never')));
  });
});
