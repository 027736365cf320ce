import type { IssuerConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { GITHUB_ACTIONS_ISSUER } from './github.js';

/** An issuer from the configuration with its preset applied: everything verification needs. */
export interface ResolvedIssuer {
  /** `issuers[].name`, what rules refer to. */
  readonly name: string;
  /** The exact `iss` a token must carry. */
  readonly issuer: string;
  readonly audience: string;
  /** Where the OIDC discovery document is read. */
  readonly discoveryUrl: URL;
  readonly allowInsecureHttp: boolean;
  readonly maxTokenAgeSeconds: number;
  readonly leewaySeconds: number;
  readonly subjectClaim: string;
  readonly singleUseJti: boolean;
  readonly preset: IssuerConfig['preset'];
}

/**
 * Applies presets and checks what zod cannot see alone: two entries for one
 * `iss`, a `dev` issuer outside dev mode, plain http without the opt-in.
 * Errors name the dotted path (`issuers[1].issuer`).
 */
export function resolveIssuers(configs: readonly IssuerConfig[], devIssuerUrl: string | undefined): ResolvedIssuer[] {
  const seen = new Map<string, string>();
  return configs.map((config, index) => {
    const path = `issuers[${index}]`;
    let issuer: string;
    let allowInsecureHttp = config.allow_insecure_http;
    switch (config.preset) {
      case 'github':
        // GitHub Enterprise Server sets its own issuer.
        issuer = config.issuer ?? GITHUB_ACTIONS_ISSUER;
        break;
      case 'dev':
        if (!devIssuerUrl) {
          throw new ConfigError(`${path}.preset: the dev issuer exists only in \`latchkey dev\`; remove issuer "${config.name}" from a production configuration`);
        }
        if (config.issuer !== undefined && config.issuer !== devIssuerUrl) {
          throw new ConfigError(`${path}.issuer: the dev preset's issuer is ${devIssuerUrl}; leave issuer unset`);
        }
        issuer = devIssuerUrl;
        // The dev broker serves its own issuer on loopback over plain http.
        allowInsecureHttp = true;
        break;
      default:
        if (!config.issuer) throw new ConfigError(`${path}.issuer: expected an issuer URL (or preset: github)`);
        issuer = config.issuer;
    }
    const discovery = config.discovery_url ?? wellKnown(issuer);
    for (const [field, url] of [['issuer', issuer], ['discovery_url', discovery]] as const) {
      const protocol = new URL(url).protocol;
      if (protocol !== 'https:' && !(protocol === 'http:' && allowInsecureHttp)) {
        throw new ConfigError(`${path}.${field}: expected an https URL, got ${url} (set allow_insecure_http: true only for tests)`);
      }
    }
    const other = seen.get(issuer);
    if (other !== undefined) {
      throw new ConfigError(`${path}.issuer: ${issuer} is already configured as issuer "${other}"; each iss may appear once`);
    }
    seen.set(issuer, config.name);
    return {
      name: config.name,
      issuer,
      audience: config.audience,
      discoveryUrl: new URL(discovery),
      allowInsecureHttp,
      maxTokenAgeSeconds: config.max_token_age,
      leewaySeconds: config.leeway,
      subjectClaim: config.subject_claim,
      singleUseJti: config.single_use_jti,
      preset: config.preset,
    };
  });
}

/** OpenID Connect Discovery 1.0: the document sits under the issuer's own path. */
function wellKnown(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}
