import * as client from 'openid-client';
import { brokerUrl } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';
import { deleteSession, describeOidcError, discoverIdp, readSession, sessionFilePath, withSessionLock } from './session-store.js';

/**
 * `latchkey logout [--url BROKER]`: forgets the sign-in stored for the broker
 * and, when the IdP has a revocation endpoint (RFC 7009), revokes its refresh
 * token there so a copy of the file is worthless too. The file goes even when
 * the IdP cannot be reached.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('logout', args, { url: { type: 'string' } });
  const broker = brokerUrl(values['url'] as string | undefined, io);
  const path = sessionFilePath(broker, io.env);
  let session;
  try {
    session = readSession(path);
  } catch {
    // A damaged file is removed all the same.
    session = undefined;
  }
  if (!session && !deleteSession(path)) {
    io.stdout.write(`Not signed in to ${broker}.\n`);
    return 0;
  }
  let revocation = '';
  if (session?.refresh_token) {
    try {
      const configuration = await discoverIdp(session.issuer);
      if (configuration.serverMetadata().revocation_endpoint) {
        await client.tokenRevocation(configuration, session.refresh_token, { token_type_hint: 'refresh_token' });
        revocation = ' The refresh token was revoked at the identity provider.';
      } else {
        revocation = ' The identity provider has no revocation endpoint: the refresh token lives until it expires there.';
      }
    } catch (err) {
      io.stderr.write(`latchkey: could not revoke the refresh token at ${session.issuer.issuer}: ${describeOidcError(err)}\n`);
    }
  }
  await withSessionLock(path, async () => deleteSession(path));
  io.stdout.write(`Signed out of ${broker}.${revocation}\n`);
  return 0;
};
