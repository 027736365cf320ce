import { IssuerUnavailable } from '../errors.js';

/** The shape both jose's and openid-client's `customFetch` hooks call. */
export type FetchLike = (url: string, init: RequestInit & { signal?: AbortSignal | null }) => Promise<Response>;

export interface BoundedFetchLimits {
  /** Abort a request (headers and body) that takes longer than this. */
  readonly timeoutMs: number;
  /** Refuse a response body larger than this many bytes (counted after decompression). */
  readonly maxBytes: number;
  /** What the request is for, so errors say which document failed ("key set of issuer x"). */
  readonly describe: string;
}

/**
 * A `fetch` for issuer metadata and key sets that cannot be made to hang or to
 * fill memory: it aborts after `timeoutMs` and stops reading after `maxBytes`.
 * The body is read here in full and handed on as a fresh `Response`, so the
 * library that parses it never sees more than the cap.
 */
export function boundedFetch(limits: BoundedFetchLimits, fetchImpl: typeof fetch = fetch): FetchLike {
  return async (url, init) => {
    const timeout = AbortSignal.timeout(limits.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetchImpl(url, { ...init, signal });
    } catch (err) {
      throw new IssuerUnavailable(`${limits.describe}: request to ${url} failed (${reasonOf(err, signal)})`, { url }, { cause: err });
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      await response.body?.cancel().catch(() => {});
      throw tooLarge(limits, url);
    }
    const chunks: Uint8Array[] = [];
    let received = 0;
    if (response.body) {
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          received += value.byteLength;
          if (received > limits.maxBytes) {
            await reader.cancel().catch(() => {});
            throw tooLarge(limits, url);
          }
          chunks.push(value);
        }
      } catch (err) {
        if (err instanceof IssuerUnavailable) throw err;
        throw new IssuerUnavailable(`${limits.describe}: reading ${url} failed (${reasonOf(err, signal)})`, { url }, { cause: err });
      }
    }
    const headers = new Headers(response.headers);
    // The body handed on is already decoded: drop headers that describe the wire form.
    headers.delete('content-encoding');
    headers.delete('content-length');
    const body = NULL_BODY_STATUSES.has(response.status) ? null : Buffer.concat(chunks);
    return new Response(body, { status: response.status, statusText: response.statusText, headers });
  };
}

// `new Response()` refuses a body for these statuses.
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

function tooLarge(limits: BoundedFetchLimits, url: string): IssuerUnavailable {
  return new IssuerUnavailable(`${limits.describe}: response from ${url} is larger than ${limits.maxBytes} bytes`, { url });
}

function reasonOf(err: unknown, signal: AbortSignal): string {
  // Ours or the caller's (jose's) timeout: either way the issuer was too slow.
  if (signal.aborted || (err as Error).name === 'TimeoutError') return 'timed out';
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code ?? (err as Error).message ?? String(err);
}
