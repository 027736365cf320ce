import { readFileSync, readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig, validateConfig, type Config } from '../../src/config/load.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { providerKinds } from '../../src/providers/registry.js';

// There is no helm binary on this machine (nor in Debian), so the chart is
// checked through what can be read without rendering: its plain YAML files,
// the configuration its values embed (validated and linted by the broker's
// own code, after Helm's merge of values files), the Secret mounts the
// templates create against the files that configuration names, and every
// `.Values.` path the templates use.

const CHART = new URL('../../helm/latchkey/', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, CHART), 'utf8');
const yamlFile = (path: string): any => parse(read(path));
const values = yamlFile('values.yaml');
const productionValues = yamlFile('ci/production-values.yaml');
const productionExample = readFileSync(new URL('../../examples/production.yaml', import.meta.url), 'utf8');
const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isMap = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's coalescing of a values file over the chart's values: maps merge deeply, anything else replaces, null removes. */
function helmMerge(base: Json, over: Json): Json {
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else out[key] = key in base ? helmMerge(base[key] as Json, value) : value;
  }
  return out;
}

function errorsOf(config: Config): string[] {
  return lintPolicy(config).filter((f) => f.severity === 'error').map((f) => `${f.path}: ${f.message}`);
}

/** Files the pod sees, as deployment.yaml mounts them for these values: exact files, and folders whose every key appears. */
function mountedPaths(v: any): { files: Set<string>; folders: string[] } {
  const root = '/var/run/secrets/latchkey';
  return {
    files: new Set(['/etc/latchkey/config.yaml', `${root}/database/url`, `${root}/audit/signing-key.pem`]),
    folders: [
      ...(v.secrets.certificateAuthorities ?? []).map((ca: { name: string }) => `${root}/ca/${ca.name}`),
      ...(v.extraSecretMounts ?? []).map((m: { mountPath: string }) => m.mountPath),
      '/tmp',
    ],
  };
}

/** Every file path a configuration reads. */
function filesNamedBy(config: any): string[] {
  const files = [config.database?.url_file, config.keys?.audit_signing_key_file];
  for (const target of Object.values<any>(config.targets ?? {})) {
    files.push(target.ca_cert_file, target.ca_key_file, target.admin_url_file, ...(target.chain_files ?? []));
  }
  return files.filter((f): f is string => typeof f === 'string');
}

function unmounted(v: any): string[] {
  const { files, folders } = mountedPaths(v);
  return filesNamedBy(v.config).filter((f) => !files.has(f) && !folders.some((dir) => posix.dirname(f) === dir));
}

describe('the Helm chart', () => {
  it('has a Chart.yaml for Helm 3 whose appVersion is the package version', () => {
    const chart = yamlFile('Chart.yaml');
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'latchkey', type: 'application' });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(chart.appVersion).toBe(packageJson.version);
  });

  it('embeds a configuration the broker accepts, listening on the pod IP on the Service port', () => {
    const config = validateConfig(values.config, 'values.yaml config', providerKinds);
    expect(errorsOf(config)).toEqual([]);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.server.port).toBe(8420);
    expect(values.service.port).toBe(8420);
    expect(config.keys.audit_signing_key_file).toBeDefined();
    expect(config.database.url_file).toBeDefined();
    // The defaults grant nothing until an operator writes rules.
    expect(config.rules).toEqual([]);
  });

  it('mounts every file its default configuration names', () => {
    expect(unmounted(values)).toEqual([]);
  });

  it('runs two replicas, non-root, read-only, without capabilities, under the memory target, with the image\'s heap ceiling', () => {
    expect(values.replicaCount).toBe(2);
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(values.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(values.resources.limits.memory).toBe('256Mi');
    // The heap ceiling is below the limit, and the image sets the same one for a plain `docker run`.
    expect(values.nodeOptions).toMatch(/^--max-old-space-size=(\d+)$/);
    expect(Number(/=(\d+)/.exec(values.nodeOptions)?.[1])).toBeLessThan(256);
    const dockerfile = readFileSync(new URL('../../deploy/Dockerfile', import.meta.url), 'utf8');
    expect(dockerfile).toContain(`ENV NODE_OPTIONS=${values.nodeOptions}`);
    expect(values.livenessProbe.httpGet.path).toBe('/healthz');
    expect(values.readinessProbe.httpGet.path).toBe('/readyz');
    expect(values.podDisruptionBudget.enabled).toBe(true);
    // The load balancer drains during preStop; SIGTERM's graceful shutdown still fits in the grace period.
    expect(values.terminationGracePeriodSeconds).toBeGreaterThan(values.lifecycle.preStopSleepSeconds + 15);
  });

  it('deploys examples/production.yaml verbatim through ci/production-values.yaml, with every file it names mounted', () => {
    expect(productionValues.config).toEqual(parse(productionExample));
    const merged = helmMerge(values, productionValues) as any;
    expect(merged.config).toEqual(parse(productionExample));
    expect(unmounted(merged)).toEqual([]);
    expect(merged.serviceAccount.annotations['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\//);
  });

  it('refers in its templates only to values that values.yaml defines', () => {
    const templates = readdirSync(new URL('templates/', CHART)).filter((f) => /\.(yaml|tpl|txt)$/.test(f));
    expect(templates).toEqual(expect.arrayContaining(['_helpers.tpl', 'deployment.yaml', 'NOTES.txt', 'migration-job.yaml']));
    const missing: string[] = [];
    for (const file of templates) {
      for (const [, path] of read(`templates/${file}`).matchAll(/\$?\.Values\.([A-Za-z0-9_.]+)/g)) {
        let node: unknown = values;
        for (const key of (path as string).split('.')) {
          if (!isMap(node) || !(key in node)) {
            missing.push(`${file}: .Values.${path}`);
            break;
          }
          node = node[key];
        }
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('examples/production.yaml', () => {
  const config = parseConfig(productionExample, 'examples/production.yaml', providerKinds);

  it('validates and passes policy lint without an error or a warning', () => {
    expect(lintPolicy(config).map((f) => `${f.severity} ${f.path}: ${f.message}`)).toEqual([]);
    expect(() => compilePolicy(config)).not.toThrow();
  });

  it('pins every GitHub rule to immutable repository and owner ids, and every SSO rule to a hardware-key sign-in', () => {
    for (const rule of config.rules) {
      if (rule.issuer === 'github') {
        expect(rule.when, rule.name).toHaveProperty('repository_id');
        expect(rule.when, rule.name).toHaveProperty('repository_owner_id');
        expect(rule.when, rule.name).toHaveProperty('runner_environment', 'github-hosted');
      } else {
        expect(rule.when['amr'], rule.name).toEqual({ contains: 'hwk' });
      }
    }
    expect(config.rules.some((r) => r.allow.some((a) => a.require_approval))).toBe(true);
  });

  it('writes no secret inline: only file paths', () => {
    expect(productionExample).not.toMatch(/postgres(ql)?:\/\/[^\s"]*:[^\s"]*@/);
    expect(productionExample).not.toMatch(/-----BEGIN/);
    expect(productionExample).not.toMatch(/\b(password|secret_access_key|aws_secret)\s*:/i);
  });
});
