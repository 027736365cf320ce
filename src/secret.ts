import { inspect } from 'node:util';

const REDACTED = '[redacted]';

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

/** Paths pino redacts as a second line of defence. */
export const LOG_REDACT_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'privateKey',
  '*.privateKey',
  'key',
  '*.key',
];
