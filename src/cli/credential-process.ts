import { InvalidRequest } from '../errors.js';
import { connectToBroker } from './client.js';
import { credentialProcessJson, requestAwsGrant } from './grant-aws.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/**
 * `latchkey credential-process --url U --target T --role R`: for
 * `credential_process = latchkey credential-process ...` in `~/.aws/config`.
 * Prints exactly the JSON the AWS CLI and SDKs read (`Version: 1`,
 * `AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`) on stdout
 * and nothing else; any failure goes to stderr with a non-zero exit, which
 * the AWS tools show to the user.
 */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('credential-process', args, {
    url: { type: 'string' },
    target: { type: 'string' },
    role: { type: 'string' },
    token: { type: 'string' },
    audience: { type: 'string' },
    ttl: { type: 'string' },
  });
  const target = values['target'] as string | undefined;
  const role = values['role'] as string | undefined;
  if (!target || !role) throw new InvalidRequest('latchkey credential-process: --target and --role are required');
  const { url, token } = await connectToBroker(values, io, 'issue');
  const grant = await requestAwsGrant({ url, token, target, role, ...(values['ttl'] ? { ttl: values['ttl'] as string } : {}) }, io);
  io.stdout.write(credentialProcessJson(grant.credential));
  return 0;
};
