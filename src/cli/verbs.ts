import { registerVerb } from './main.js';

// One line per verb: name, one-line summary, the file that implements it.
