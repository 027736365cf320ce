import { InvalidRequest } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import { brokerUrl, callBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';

/**
 * Parses `--claim k=v` (a string) and `--claim k:=JSON` (any JSON value, e.g.
 * `groups:='["auditors"]'`), as httpie does.
 */
export function parseClaimFlags(flags: readonly string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  for (const flag of flags) {
    const json = /^([^=:]+):=(.*)$/s.exec(flag);
    if (json) {
      try {
        claims[json[1] as string] = JSON.parse(json[2] as string);
      } catch {
        throw new InvalidRequest(`--claim ${json[1]}:=… must be JSON, e.g. groups:='["auditors"]'`);
      }
      continue;
    }
    const plain = /^([^=]+)=(.*)$/s.exec(flag);
    if (!plain) throw new InvalidRequest(`--claim expects name=value or name:=JSON, got ${JSON.stringify(flag)}`);
    claims[plain[1] as string] = plain[2];
  }
  return claims;
}

/** `latchkey token`: mints a development token from a running `latchkey dev`. Prints only the token. */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('token', args, {
    claim: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    audience: { type: 'string' },
    url: { type: 'string' },
  });
  const claims = parseClaimFlags((values['claim'] as string[] | undefined) ?? []);
  const ttl = values['ttl'] === undefined ? undefined : parseDuration(values['ttl'] as string);
  if (ttl === null) throw new InvalidRequest('--ttl expects a duration such as 10m');
  const url = brokerUrl(values['url'] as string | undefined, io);
  const answer = await callBroker<{ token: string }>(url, 'POST', '/dev/oidc/token', {
    body: { claims, ...(ttl ? { ttl_seconds: ttl } : {}), ...(values['audience'] ? { audience: values['audience'] } : {}) },
  });
  io.stdout.write(`${answer.token}\n`);
  return 0;
};
