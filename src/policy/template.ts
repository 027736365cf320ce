import { TemplateError } from '../errors.js';

/**
 * Templates put claim values into what is issued, for example the SPIFFE ID
 * `spiffe://{trust_domain}/gh/{repository_id}`. `{name}` is a placeholder,
 * `{{` and `}}` are a literal brace. Every substituted value is checked
 * against what the caller says is allowed there, so a claim like `../admin`
 * becomes a denial, not a malformed credential.
 */

/** A SPIFFE ID path segment: letters, digits, `.`, `-`, `_`, never empty, `.` or `..`. */
export const SPIFFE_PATH_SEGMENT = /(?!\.\.?$)[A-Za-z0-9._-]+/;

type Part = { readonly literal: string } | { readonly placeholder: string };

const PLACEHOLDER_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Splits a template; a malformed one (unclosed `{`, lone `}`, bad name) is a bug in the config: TypeError. */
function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i] as string;
    if (ch === '{' && template[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (ch === '}' && template[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (ch === '{') {
      const end = template.indexOf('}', i + 1);
      if (end < 0) throw new TypeError(`template ${JSON.stringify(template)}: "{" at ${i} is never closed (write "{{" for a literal brace)`);
      const name = template.slice(i + 1, end);
      if (!PLACEHOLDER_NAME.test(name)) {
        throw new TypeError(`template ${JSON.stringify(template)}: {${name}} is not a placeholder name (letters, digits, "_", "-")`);
      }
      if (literal) parts.push({ literal });
      literal = '';
      parts.push({ placeholder: name });
      i = end;
    } else if (ch === '}') {
      throw new TypeError(`template ${JSON.stringify(template)}: lone "}" at ${i} (write "}}" for a literal brace)`);
    } else {
      literal += ch;
    }
  }
  if (literal) parts.push({ literal });
  return parts;
}

/**
 * The placeholder names a template uses, in order of first use, for
 * config-time checks (is every placeholder a claim the issuer provides?).
 * Throws TypeError, with a message fit for a config error, when the template
 * is malformed.
 */
export function templatePlaceholders(template: string): string[] {
  const names = new Set<string>();
  for (const part of parseTemplate(template)) if ('placeholder' in part) names.add(part.placeholder);
  return [...names];
}

/** The literal text of a template (placeholders left out, `{{`/`}}` as single braces), for config-time character checks. */
export function templateLiterals(template: string): string {
  return parseTemplate(template)
    .map((part) => ('literal' in part ? part.literal : ''))
    .join('');
}

// The caller's pattern, anchored to the whole value and stripped of flags that change that.
const anchoredPatterns = new WeakMap<RegExp, RegExp>();
function anchored(pattern: RegExp): RegExp {
  let whole = anchoredPatterns.get(pattern);
  if (!whole) {
    whole = new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace(/[gym]/g, ''));
    anchoredPatterns.set(pattern, whole);
  }
  return whole;
}

function shown(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
}

/**
 * Fills a template from `values` (claims, plus names the caller adds such as
 * `trust_domain`). Each value must be a string or a finite number whose text
 * matches `options.allowed` as a whole (`options.what` names it in the
 * message, e.g. "a SPIFFE path segment"). Throws TemplateError for a value
 * that does not fit or a placeholder with no value; TypeError for a malformed
 * template.
 */
export function renderTemplate(
  template: string,
  values: Readonly<Record<string, unknown>>,
  options: { readonly allowed: RegExp; readonly what: string },
): string {
  const allowed = anchored(options.allowed);
  let out = '';
  for (const part of parseTemplate(template)) {
    if ('literal' in part) {
      out += part.literal;
      continue;
    }
    const name = part.placeholder;
    const detail = { placeholder: name, claim: name, expected: options.what };
    const value = Object.hasOwn(values, name) ? values[name] : undefined;
    if (value === undefined || value === null) {
      throw new TemplateError(`cannot fill {${name}}: the token has no claim ${name} (expected ${options.what})`, detail);
    }
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
    else {
      const type = Array.isArray(value) ? 'a list' : `a ${typeof value}`;
      throw new TemplateError(`cannot fill {${name}}: claim ${name} is ${type}, expected ${options.what}`, detail);
    }
    if (!allowed.test(text)) {
      throw new TemplateError(`cannot fill {${name}}: claim ${name} was ${shown(text)}, expected ${options.what}`, detail);
    }
    out += text;
  }
  return out;
}
