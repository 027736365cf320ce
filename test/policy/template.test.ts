import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.js';
import { renderTemplate, SPIFFE_PATH_SEGMENT, templatePlaceholders } from '../../src/policy/template.js';

const segment = { allowed: SPIFFE_PATH_SEGMENT, what: 'a SPIFFE path segment' };

describe('claim templates', () => {
  it('fills placeholders from claims, numbers as text', () => {
    expect(renderTemplate('spiffe://{trust_domain}/gh/{repository_id}', { trust_domain: 'latchkey.dev', repository_id: 1234 }, segment)).toBe(
      'spiffe://latchkey.dev/gh/1234',
    );
  });

  it('keeps doubled braces as literal braces', () => {
    expect(renderTemplate('{{literal}}-{team}', { team: 'core' }, segment)).toBe('{literal}-core');
  });

  it.each([
    ['a parent directory', '../admin'],
    ['a slash', 'a/b'],
    ['a space', 'core team'],
    ['unicode', 'tëam'],
    ['a look-alike letter', 'tеam'],
    ['an empty value', ''],
    ['a dot', '.'],
    ['two dots', '..'],
    ['a newline', 'core\nadmin'],
    ['a percent-encoding', 'a%2Fb'],
  ])('refuses a claim value with %s', (_what, team) => {
    const attempt = () => renderTemplate('spiffe://latchkey.dev/team/{team}', { team, other: 'secret-claim' }, segment);
    expect(attempt).toThrow(TemplateError);
    try {
      attempt();
    } catch (err) {
      expect(err).toMatchObject({ code: 'template_invalid', status: 403, detail: { placeholder: 'team', claim: 'team' } });
      expect((err as Error).message).toMatch(/\{team\}.*claim team.*expected a SPIFFE path segment/);
      // Only the offending claim is named, never the rest of the token.
      expect((err as Error).message).not.toMatch(/secret-claim/);
    }
  });

  it.each([
    ['a list', ['a', 'b']],
    ['an object', { a: 1 }],
    ['a boolean', true],
    ['a non-finite number', Number.NaN],
  ])('refuses a claim that is %s', (_what, team) => {
    expect(() => renderTemplate('x/{team}', { team }, segment)).toThrow(TemplateError);
  });

  it('refuses a placeholder with no value', () => {
    expect(() => renderTemplate('x/{team}', { sub: 'ann' }, segment)).toThrow(/\{team\}: the token has no claim team/);
  });

  it('matches the allowed pattern against the whole value, even when the pattern is not anchored', () => {
    const loose = { allowed: /[a-z]+/g, what: 'lower-case letters' };
    expect(renderTemplate('{v}', { v: 'abc' }, loose)).toBe('abc');
    expect(() => renderTemplate('{v}', { v: '../abc' }, loose)).toThrow(TemplateError);
    expect(() => renderTemplate('{v}', { v: 'abc\n/' }, { allowed: /^[a-z]+$/m, what: 'letters' })).toThrow(TemplateError);
  });

  it('lists the placeholders a template uses, once each', () => {
    expect(templatePlaceholders('spiffe://{trust_domain}/team/{team}/{sub}/{team}')).toEqual(['trust_domain', 'team', 'sub']);
    expect(templatePlaceholders('{{not-one}}')).toEqual([]);
  });

  it.each(['spiffe://x/{team', 'x/}', 'x/{}', 'x/{a b}', 'x/{../y}'])('calls %s malformed', (template) => {
    expect(() => templatePlaceholders(template)).toThrow(TypeError);
  });
});
