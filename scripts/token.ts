/**
 * Mints a room access token: `npm run token -- --room R --name N [--identity I] [--ttl 6h] [--grants a,b]`,
 * or an avatar worker's own credential: `npm run token -- --worker ID` (from AVATAR_WORKER_TOKEN; the
 * worker can register only as ID).
 * Signs with AUTH_SECRET (read by the server's config module), prints the token on stdout and what
 * it grants on stderr. Grants (protocol/src/accessToken.ts): canPublish, canSubscribe,
 * canPublishData, canUseAvatar, admin, or "all"; default: every grant of a participant (not admin).
 */
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../server/src/config.ts';
import { AccessTokens } from '../server/src/auth/AccessTokens.ts';
import { PARTICIPANT_GRANTS, parseGrantList, parseTtl } from '../protocol/src/accessToken.ts';
import { DEFAULT_TOKEN_TTL } from '../server/src/http/tokens.ts';
import { mintWorkerCredential } from '../server/src/auth/workerCredentials.ts';

const USAGE = 'usage: npm run token -- --room ROOM --name NAME [--identity ID] [--ttl 6h] [--grants canPublish,canSubscribe,…|all]\n       npm run token -- --worker WORKER_ID';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { room: { type: 'string' }, name: { type: 'string' }, identity: { type: 'string' }, ttl: { type: 'string' }, grants: { type: 'string' }, worker: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.worker !== undefined) return mintWorker(values.worker);
  if (!values.room || !values.name) {
    process.stderr.write(`--room and --name are required\n${USAGE}\n`);
    return 2;
  }
  let secret: string | undefined;
  try {
    secret = loadConfig().auth.secret;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (!secret) {
    process.stderr.write('AUTH_SECRET is not set: set the server\'s secret to mint tokens (without it the server needs none)\n');
    return 2;
  }
  try {
    const tokens = await AccessTokens.create({ secret });
    const minted = await tokens.mint({
      room: values.room,
      name: values.name,
      ...(values.identity ? { identity: values.identity } : {}),
      ttlS: parseTtl(values.ttl ?? DEFAULT_TOKEN_TTL),
      grants: values.grants !== undefined ? parseGrantList(values.grants) : { ...PARTICIPANT_GRANTS },
    });
    process.stdout.write(`${minted.token}\n`);
    process.stderr.write(`room "${minted.claims.room}", ${minted.claims.name} (${minted.claims.sub}), grants ${Object.keys(minted.claims.grants).join(', ') || 'none'}, expires ${new Date(minted.expiresAt).toISOString()}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
}

function mintWorker(workerId: string): number {
  let workers;
  try {
    workers = loadConfig().workers;
  } catch (err) {
    process.stderr.write(`configuration error: ${(err as Error).message}\n`);
    return 2;
  }
  if (!workers.tokenConfigured) {
    process.stderr.write('AVATAR_WORKER_TOKEN is not set: set the server\'s worker token to derive worker credentials from it\n');
    return 2;
  }
  try {
    process.stdout.write(`${mintWorkerCredential(workers.token, workerId)}\n`);
    process.stderr.write(`credential of worker "${workerId}": run it with AVATAR_WORKER_ID=${workerId} AVATAR_WORKER_TOKEN=<this>\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
