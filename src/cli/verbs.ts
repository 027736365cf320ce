import { registerVerb } from './main.js';

// One line per verb: name, one-line summary, the file that implements it.
registerVerb('policy lint', 'check a policy file for risky rules', async () => (await import('./policy-lint.js')).run);
