import type { ErrorRequestHandler, Response } from 'express';
import { isLatchkeyError, type LatchkeyError } from '../errors.js';
import type { Logger } from 'pino';

/** RFC 9457 problem details, with latchkey's stable `code`. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}

const PROBLEM_BASE = 'https://latchkey.dev/problems/';

export function problemFor(err: LatchkeyError, requestId?: string): ProblemDetails {
  const exposed = err.expose;
  return {
    type: `${PROBLEM_BASE}${err.code}`,
    title: titleFor(err.code),
    status: err.status,
    code: err.code,
    detail: exposed ? err.message : 'the broker could not complete the request',
    ...(exposed ? err.detail : {}),
    ...(requestId ? { requestId } : {}),
  };
}

function titleFor(code: string): string {
  return code.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

export function sendProblem(res: Response, problem: ProblemDetails): void {
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

/** The one HTTP error path: typed errors become problem+json; anything else is a 500 with no detail. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const requestId = res.locals['requestId'] as string | undefined;
    if (isLatchkeyError(err)) {
      const retryAfter = err.detail['retryAfterSeconds'];
      if (typeof retryAfter === 'number') res.set('retry-after', String(retryAfter));
      if (err.status >= 500) logger.error({ requestId, code: err.code, err: { message: err.message, cause: String((err.cause as Error | undefined)?.message ?? '') } }, 'request failed');
      sendProblem(res, problemFor(err, requestId));
      return;
    }
    // express' own body-parser errors carry a status (413, 400) and are the caller's fault.
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const type = (err as { type?: string }).type ?? 'invalid_request';
      sendProblem(res, {
        type: `${PROBLEM_BASE}invalid_request`,
        title: 'Invalid request',
        status,
        code: status === 413 ? 'body_too_large' : 'invalid_request',
        detail: status === 413 ? 'the request body is larger than the broker accepts' : `the request body could not be read (${type.replace(/\./g, ' ')})`,
        ...(requestId ? { requestId } : {}),
      });
      return;
    }
    logger.error({ requestId, err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unexpected error');
    sendProblem(res, {
      type: `${PROBLEM_BASE}internal`,
      title: 'Internal error',
      status: 500,
      code: 'internal',
      detail: 'the broker hit an unexpected error; the request id helps the operator find it',
      ...(requestId ? { requestId } : {}),
    });
    void req;
  };
}
