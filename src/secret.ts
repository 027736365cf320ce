import { inspect } from 'node:util';
import type { LogFn, Logger, LoggerOptions } from 'pino';

/** What a log line, error or audit record shows in place of a secret. */
export const REDACTED = '[redacted]';

/**
 * A value that must never be printed by accident: `String()`, template
 * literals, `JSON.stringify`, `console.log` and pino all see `[redacted]`.
 * Only `reveal()` gives the value, and a grep for it finds every place a secret
 * leaves the process on purpose.
 */
export class Secret<T = string> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  reveal(): T {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

// Key names compared lower-cased with `-` and `_` removed, so `SessionToken`,
// `session_token` and `x-session-token` are one name. A key is secret when it
// is one of these or ends with one, which also catches `pkcs12Password`,
// `client_secret`, `x-amz-security-token` and `proxy-authorization`.
const SECRET_KEY_NAMES = new Set(['key', 'keypem', 'pkcs12']);
const SECRET_KEY_SUFFIXES = [
  'password',
  'passwords',
  'passwd',
  'passphrase',
  'secret',
  'secrets',
  'secretkey',
  'secretaccesskey',
  'token',
  'tokens',
  'privatekey',
  'apikey',
  'authorization',
  'cookie',
  'cookies',
  'credential',
  'credentials',
];

// Log keys come from a small vocabulary; a bounded cache spares the hot path the string work.
const secretKeyCache = new Map<string, boolean>();
const SECRET_KEY_CACHE_LIMIT = 1024;

/**
 * Whether a value stored under `key` is a secret by its name: `password`,
 * `SessionToken`, `client_secret`, `authorization`, `set-cookie`, ...
 * (case-insensitive). `tokenHash`, `jti` and `csr` are not.
 */
export function isSecretKey(key: string): boolean {
  let secret = secretKeyCache.get(key);
  if (secret === undefined) {
    const name = key.toLowerCase().replace(/[-_]/g, '');
    secret = SECRET_KEY_NAMES.has(name) || SECRET_KEY_SUFFIXES.some((suffix) => name.endsWith(suffix));
    if (secretKeyCache.size >= SECRET_KEY_CACHE_LIMIT) secretKeyCache.clear();
    secretKeyCache.set(key, secret);
  }
  return secret;
}

// Bounds per log line: nothing past them is printed unexamined; it is replaced by a marker.
const MAX_DEPTH = 16;
const MAX_ENTRIES = 10_000;
const DEPTH_LIMIT = '[depth limit]';
const SIZE_LIMIT = '[size limit]';
const CIRCULAR = '[Circular]';

interface Walk {
  entries: number;
  /** The objects on the path from the root to the current value, for cycle detection. */
  readonly ancestors: object[];
}

/**
 * A copy of `value` in which every value stored under a secret key (see
 * `isSecretKey`), at any depth, reads `[redacted]`; what `JSON.stringify`
 * would print otherwise stays, but for the password of a URL in any string
 * (`withoutUrlPasswords`). The input is never changed: objects that hold
 * no secret come back as they are (no copy), the others are copied along the
 * path to the secret. Cycles print `[Circular]`; nesting deeper than 16 levels
 * or more than 10,000 entries is cut off with a marker rather than printed
 * unexamined. Errors keep their class, message and stack (less URL passwords).
 */
export function redactSecrets(value: unknown): unknown {
  return redactValue(value, 0, { entries: 0, ancestors: [] });
}

/**
 * `text` with the password of every URL in it (`scheme://user:password@host`)
 * replaced by `[redacted]`: for messages of other libraries' errors, which
 * may quote a connection string, before they reach a terminal or a log.
 */
export function withoutUrlPasswords(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]*@/gi, `$1${REDACTED}@`);
}

/**
 * pino's `formatters.log` (and the root `formatters.bindings`): the object
 * passed to a log call, with secrets redacted at any depth. Never throws: an
 * object that cannot be inspected (a throwing getter) is not logged at all.
 */
export function redactLogObject(object: Record<string, unknown>): Record<string, unknown> {
  try {
    // The top level is not passed through toJSON: pino prints its keys one by one.
    return redactEntries(object, 0, { entries: 0, ancestors: [object] }) as Record<string, unknown>;
  } catch {
    return { logRedaction: 'the logged object could not be inspected for secrets and was left out' };
  }
}

function redactValue(value: unknown, depth: number, walk: Walk): unknown {
  if (typeof value === 'string') return value.includes('://') ? withoutUrlPasswords(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  // Printed whole, with no named fields inside: dates, buffers and typed arrays.
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  if (depth >= MAX_DEPTH) return DEPTH_LIMIT;
  if (walk.entries >= MAX_ENTRIES) return SIZE_LIMIT;
  if (walk.ancestors.includes(value)) return CIRCULAR;
  if (value instanceof Error) return redactError(value, depth, walk);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    // JSON.stringify prints what toJSON returns (Secret gives `[redacted]`): examine that instead.
    const json: unknown = toJSON.call(value);
    if (typeof json !== 'object' || json === null) return value;
    const redacted = redactEntries(json, depth, walk);
    return redacted === json ? value : redacted;
  }
  return redactEntries(value, depth, walk);
}

/** The object's or array's own enumerable entries (what JSON.stringify prints), redacted; the same object when none changed. */
function redactEntries(value: object, depth: number, walk: Walk): unknown {
  walk.ancestors.push(value);
  const redacted = Array.isArray(value) ? redactArray(value, depth, walk) : redactObject(value as Record<string, unknown>, depth, walk);
  walk.ancestors.pop();
  return redacted;
}

function redactArray(source: readonly unknown[], depth: number, walk: Walk): unknown[] {
  let copy: unknown[] | undefined;
  for (let i = 0; i < source.length; i += 1) {
    if (++walk.entries > MAX_ENTRIES) {
      copy ??= source.slice(0, i);
      copy.push(SIZE_LIMIT);
      return copy;
    }
    const item = source[i];
    const redacted = redactValue(item, depth + 1, walk);
    if (redacted !== item && !copy) copy = source.slice(0, i);
    copy?.push(redacted);
  }
  return copy ?? (source as unknown[]);
}

function redactObject(source: Record<string, unknown>, depth: number, walk: Walk): Record<string, unknown> {
  const keys = Object.keys(source);
  let copy: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i += 1) {
    const key = keys[i] as string;
    if (++walk.entries > MAX_ENTRIES) {
      copy ??= copyEntries(source, keys, i);
      setEntry(copy, SIZE_LIMIT, `${keys.length - i} more keys`);
      return copy;
    }
    const item = source[key];
    const redacted = isSecretKey(key) ? censor(item) : redactValue(item, depth + 1, walk);
    if (redacted !== item && !copy) copy = copyEntries(source, keys, i);
    if (copy) setEntry(copy, key, redacted);
  }
  return copy ?? source;
}

/**
 * An error with its enumerable fields, message and stack redacted (URL
 * passwords), and the errors of an AggregateError, which pino's error
 * serializer prints too. The copy keeps the error's class and cause, so the
 * log line reads as before.
 */
function redactError(error: Error, depth: number, walk: Walk): Error {
  walk.ancestors.push(error);
  const fields = redactObject(error as unknown as Record<string, unknown>, depth, walk);
  const errors: unknown = (error as { errors?: unknown }).errors;
  const nested = Array.isArray(errors) ? redactValue(errors, depth + 1, walk) : errors;
  walk.ancestors.pop();
  const message = redactValue(error.message, depth, walk);
  const stack = redactValue(error.stack, depth, walk);
  if (fields === (error as unknown) && nested === errors && message === error.message && stack === error.stack) return error;
  const copy = Object.create(Object.getPrototypeOf(error) as object, Object.getOwnPropertyDescriptors(error)) as Error;
  if (message !== error.message) Object.defineProperty(copy, 'message', { value: message, enumerable: false, writable: true, configurable: true });
  if (stack !== error.stack) Object.defineProperty(copy, 'stack', { value: stack, enumerable: false, writable: true, configurable: true });
  if (fields !== (error as unknown)) for (const key of Object.keys(fields)) Object.defineProperty(copy, key, { value: fields[key], enumerable: true, writable: true, configurable: true });
  if (nested !== errors) Object.defineProperty(copy, 'errors', { value: nested, enumerable: false, writable: true, configurable: true });
  return copy;
}

// A missing or null secret prints as it is: there is nothing to hide.
const censor = (value: unknown): unknown => (value === undefined || value === null ? value : REDACTED);

/** A plain object holding the first `count` entries of `source`. */
function copyEntries(source: Record<string, unknown>, keys: readonly string[], count: number): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (let i = 0; i < count; i += 1) {
    const key = keys[i] as string;
    setEntry(copy, key, source[key]);
  }
  return copy;
}

// `__proto__` is a legal own key (JSON.parse makes them); plain assignment would set the prototype instead.
function setEntry(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * The check pino's `onChild` runs: a child logger's bindings are printed on
 * every line it writes, but pino gives them no formatter, so a child bound to
 * a secret is refused (a bug, found the first time that code runs) rather than
 * printed. Runs once per child, not per line.
 */
export function refuseSecretBindings(child: Logger): void {
  const bindings = child.bindings();
  const redacted = redactLogObject(bindings);
  if (redacted === bindings) return;
  const keys = Object.keys(bindings).filter((key) => redacted[key] !== bindings[key]);
  throw new TypeError(`logger.child(): the bindings hold a secret under ${keys.join(', ')}; log it per line, where it is redacted, or not at all`);
}

/**
 * pino options that keep secrets out of log lines: every logger the broker
 * writes with spreads them in. Each logged object is walked at any depth (see
 * `redactSecrets`) before pino's serializers run; the error serializer prints
 * the redacted copy.
 */
export const LOG_REDACTION = {
  formatters: { log: redactLogObject, bindings: redactLogObject },
  onChild: refuseSecretBindings,
  hooks: { logMethod: redactMessageArguments },
} satisfies LoggerOptions;

/**
 * pino's `hooks.logMethod`: the message and its format arguments, less URL
 * passwords. It runs for every line (each audit event is one), so it copies
 * the arguments only when one of them holds a URL.
 */
function redactMessageArguments(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const hasUrl = (arg: unknown) => typeof arg === 'string' && arg.includes('://');
  const redacted = args.some(hasUrl) ? args.map((arg) => (hasUrl(arg) ? withoutUrlPasswords(arg as string) : arg)) : args;
  (method as (...a: unknown[]) => void).apply(this, redacted);
}
