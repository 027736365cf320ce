import express, { Router } from 'express';
import { z } from 'zod';
import { InvalidRequest, UnknownTarget, isLatchkeyError } from '../../errors.js';
import { STS_REVOCATION_NOTE } from '../../providers/aws/settings.js';
import { authenticate, callerOf, requestFacts, requireRole } from '../auth.js';
import type { AppContext } from '../context.js';

const revokeSessionsBody = z.strictObject({
  role: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected one of the target\'s role names'),
});

/**
 * `POST /v1/targets/:target/aws/revoke-sessions` `{"role": "deploy"}`: the
 * admin's answer to "STS credentials cannot be revoked one by one". Puts
 * AWS's `AWSRevokeOlderSessions` inline policy on the role. The intent is
 * audited before IAM is called and the result before the answer, fail
 * closed: no audit record, no action and no success reported.
 *
 * Paths are absolute: mount with `{ path: '/', router: awsSessionRoutes(ctx) }`.
 */
export function awsSessionRoutes(ctx: AppContext): Router {
  const router = Router();
  router.post(
    '/v1/targets/:target/aws/revoke-sessions',
    // The app parses JSON already; this keeps the router whole when mounted on its own.
    express.json({ limit: '4kb' }),
    authenticate(ctx, { consume: false }),
    requireRole('admin'),
    async (req, res) => {
      const targetName = req.params['target'] as string;
      const parsed = revokeSessionsBody.safeParse(req.body ?? {});
      if (!parsed.success) {
        throw new InvalidRequest(`invalid request body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
      }
      const { role } = parsed.data;
      const target = ctx.targets.get(targetName);
      if (!target) {
        const broken = ctx.targetErrors.get(targetName);
        if (broken !== undefined) throw new UnknownTarget(`target ${targetName} failed to open: ${broken}`);
        throw new UnknownTarget(`no target named ${JSON.stringify(targetName.slice(0, 63))}`);
      }
      if (target.kind !== 'aws') throw new InvalidRequest(`target ${targetName} is of kind ${target.kind}; revoke-sessions applies to aws targets`);

      const { identity } = callerOf(res);
      const base = {
        type: 'aws.sessions_revoked' as const,
        ...requestFacts(req, res),
        issuer: identity.issuerName,
        subject: identity.subject,
        tokenHash: identity.tokenHash,
        kind: 'aws',
        target: targetName,
        scope: { role },
      };
      await ctx.audit.append({ ...base, outcome: 'intent' });
      let revoked;
      try {
        const { revokeOlderSessions } = await import('../../providers/aws/revoke-sessions.js');
        revoked = await revokeOlderSessions(target, role, ctx.clock.now());
      } catch (err) {
        const error = isLatchkeyError(err) ? { code: err.code, message: err.message } : { code: 'internal', message: 'unexpected error' };
        await ctx.audit.append({ ...base, outcome: 'error', error }).catch(() => {});
        throw err;
      }
      await ctx.audit.append({
        ...base,
        outcome: 'success',
        details: { role_arn: revoked.roleArn, policy_name: revoked.policyName, cutoff: revoked.cutoff },
      });
      res.json({
        target: revoked.target,
        role: revoked.role,
        roleArn: revoked.roleArn,
        policyName: revoked.policyName,
        revokedSessionsIssuedBefore: revoked.cutoff,
        note: `Every session of ${revoked.roleArn} issued before ${revoked.cutoff} is now denied every action (IAM may take a few seconds to apply it). ${STS_REVOCATION_NOTE}`,
      });
    },
  );
  return router;
}
