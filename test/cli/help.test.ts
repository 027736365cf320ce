import { describe, expect, it } from 'vitest';
import { parseVerbArgs, HelpRequested } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { capturedIO } from '../providers/aws/support.js';

describe('latchkey <command> --help', () => {
  it('prints the command, what it does and every option it takes, and exits 0 without running it', async () => {
    const cli = capturedIO({});
    const code = await main(['grant', 'aws', '--help'], cli.io);
    expect(code).toBe(0);
    expect(cli.stdout().split('\n')).toEqual([
      'usage: latchkey grant aws [options]',
      '',
      '  get AWS credentials for a role (--target T --role R | --claim ID) [--format env|json|credential-process|github]',
      '',
      'options:',
      '  --target VALUE',
      '  --role VALUE',
      '  --format VALUE',
      '  --url VALUE',
      '  --token VALUE',
      '  --audience VALUE',
      '  --ttl VALUE',
      '  --reason VALUE',
      '  --claim VALUE',
      '',
    ]);
    expect(cli.stderr()).toBe('');
  });

  it('says when a command takes arguments, and shows flags without a value', async () => {
    const cli = capturedIO({});
    expect(await main(['revoke', '-h'], cli.io)).toBe(0);
    expect(cli.stdout()).toContain('usage: latchkey revoke [options] [ARGUMENTS]');
    expect(cli.stdout()).toContain('\n  --json\n');
  });

  it('does nothing and exits 2 when -h comes with other arguments (psql -h host without --), saying why', async () => {
    const cli = capturedIO({});
    expect(await main(['grant', 'postgres', '--target', 'db', '--exec', 'psql', '-h', 'localhost'], cli.io)).toBe(2);
    expect(cli.stdout()).toBe('');
    expect(cli.stderr()).toContain('usage: latchkey grant postgres');
    expect(cli.stderr()).toContain('latchkey: grant postgres: -h/--help given with other arguments, so nothing was done; options for another program go after --');
  });

  it('leaves -h after -- to the program the command runs (psql -h host)', () => {
    const parsed = parseVerbArgs('grant postgres', ['--target', 'db', '--', '-h', 'localhost'], { target: { type: 'string' } }, true);
    expect(parsed.values['target']).toBe('db');
    expect(parsed.positionals).toEqual(['-h', 'localhost']);
    expect(() => parseVerbArgs('grant postgres', ['--target', 'db', '-h'], { target: { type: 'string' } }, true)).toThrow(HelpRequested);
  });
});
