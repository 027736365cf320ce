// One "broker" process appending audit events: node append-process.mjs URL NAME COUNT.
// Appends COUNT events concurrently through its own AuditLog and pool, then exits 0.
import { AuditLog } from '../../dist/audit/log.js';
import { systemClock } from '../../dist/clock.js';
import { Database } from '../../dist/store/database.js';

const [url, name, count] = process.argv.slice(2);
const db = new Database(url, 4);
const log = new AuditLog(db, systemClock);
await Promise.all(
  Array.from({ length: Number(count) }, (_, i) =>
    log.append({ type: 'grant.issued', outcome: 'success', requestId: `${name}-${i}`, subject: `user-${i % 7}`, kind: 'certificate', target: 'mesh' }),
  ),
);
await log.close();
await db.close();
