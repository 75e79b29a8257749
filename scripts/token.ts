/**
 * Mints a room access token: `npm run token -- --room R --name N [--identity I] [--ttl 6h] [--grants a,b]`.
 * Signs with AUTH_SECRET (read by the server's config module), prints the token on stdout and what
 * it grants on stderr. Grants (protocol/src/accessToken.ts): canPublish, canSubscribe,
 * canPublishData, canUseAvatar, admin, or "all"; default: every grant of a participant (not admin).
 */
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../server/src/config.ts';
import { AccessTokens } from '../server/src/auth/AccessTokens.ts';
import { PARTICIPANT_GRANTS, parseGrantList, parseTtl } from '../protocol/src/accessToken.ts';
import { DEFAULT_TOKEN_TTL } from '../server/src/http/tokens.ts';

const USAGE = 'usage: npm run token -- --room ROOM --name NAME [--identity ID] [--ttl 6h] [--grants canPublish,canSubscribe,…|all]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { room: { type: 'string' }, name: { type: 'string' }, identity: { type: 'string' }, ttl: { type: 'string' }, grants: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
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

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
