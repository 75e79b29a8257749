/** Development TLS certificate: generated on first start so LAN devices can use getUserMedia over HTTPS. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
}

export async function loadOrCreateDevCertificate(tls: Config['tls'], logger: Logger): Promise<TlsMaterial | null> {
  try {
    const [cert, key] = await Promise.all([fs.readFile(tls.certFile, 'utf8'), fs.readFile(tls.keyFile, 'utf8')]);
    return { cert, key };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!tls.generateIfMissing) {
    logger.warn({ certFile: tls.certFile }, 'TLS certificate missing and generation disabled: HTTPS off');
    return null;
  }
  const ips = new Set(['127.0.0.1']);
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4') ips.add(a.address);
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 1);
  const pems = await generate([{ name: 'commonName', value: 'avatar-sfu development' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 2, value: os.hostname() }, ...[...ips].map((ip) => ({ type: 7 as const, ip }))] },
    ],
  });
  await fs.mkdir(path.dirname(tls.certFile), { recursive: true });
  await fs.mkdir(path.dirname(tls.keyFile), { recursive: true });
  await fs.writeFile(tls.keyFile, pems.private, { mode: 0o600 });
  await fs.writeFile(tls.certFile, pems.cert);
  logger.info({ certFile: tls.certFile, fingerprint: pems.fingerprint }, 'generated self-signed development certificate');
  return { cert: pems.cert, key: pems.private };
}
