import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, InvalidRequest } from '../errors.js';
import { HASH_SIZE } from './merkle.js';

/**
 * C2SP checkpoints (https://c2sp.org/tlog-checkpoint) in signed notes
 * (https://c2sp.org/signed-note), signed with Ed25519:
 *
 * ```
 * <origin>\n<tree size>\n<base64 root hash>\n[extension lines]\n
 * \n
 * — <key name> <base64(key hash (4 bytes) || signature)>\n
 * ```
 *
 * The key hash is the first four bytes of SHA-256(name || "\n" || 0x01 || public key),
 * and the verifier key is written `<name>+<hex key hash>+<base64(0x01 || public key)>`,
 * as Go's golang.org/x/mod/sumdb/note reads it.
 */

const ED25519_ALG = 0x01;
const EM_DASH = '\u2014';
/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The Ed25519 key that signs checkpoints. */
export interface AuditSigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The 32-byte raw public key. */
  readonly publicKeyRaw: Buffer;
}

/**
 * Loads the checkpoint signing key: `keys.audit_signing_key_file` (PKCS#8 PEM)
 * when set; in dev mode, `<dataDir>/audit-signing-key.pem`, generated once
 * with mode 0600; otherwise a ConfigError (production needs a real key).
 */
export function loadAuditSigningKey(options: { file?: string | undefined; dataDir: string; devMode: boolean }): AuditSigningKey {
  if (options.file) return signingKeyFromPem(readKeyFile(options.file), `keys.audit_signing_key_file: ${options.file}`);
  if (!options.devMode) {
    throw new ConfigError('keys.audit_signing_key_file: required outside dev mode: an Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints');
  }
  const path = join(options.dataDir, 'audit-signing-key.pem');
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      // 'wx': two processes starting together must not overwrite each other's key.
      writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return signingKeyFromPem(readKeyFile(path), path);
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`keys.audit_signing_key_file: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** An AuditSigningKey from a PKCS#8 PEM text. */
export function signingKeyFromPem(pem: string, source = 'the audit signing key'): AuditSigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`${source} is not a PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`${source} is a key of type ${privateKey.asymmetricKeyType ?? 'unknown'}; audit checkpoints are signed with Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyRaw: rawEd25519PublicKey(publicKey) };
}

function rawEd25519PublicKey(key: KeyObject): Buffer {
  const der = key.export({ type: 'spki', format: 'der' });
  return Buffer.from(der.subarray(ED25519_SPKI_PREFIX.length));
}

function keyHashOf(name: string, publicKeyRaw: Uint8Array): Buffer {
  return createHash('sha256')
    .update(`${name}\n`)
    .update(Buffer.from([ED25519_ALG]))
    .update(publicKeyRaw)
    .digest()
    .subarray(0, 4);
}

function checkKeyName(name: string): void {
  if (!name || /\s|\+/u.test(name)) throw new TypeError(`a signed-note key name has no spaces or "+": ${JSON.stringify(name)}`);
}

/** The verifier key in signed-note form: `<name>+<8 hex digits>+<base64(0x01 || public key)>`. */
export function verifierKey(name: string, key: Pick<AuditSigningKey, 'publicKeyRaw'>): string {
  checkKeyName(name);
  const encoded = Buffer.concat([Buffer.from([ED25519_ALG]), key.publicKeyRaw]).toString('base64');
  return `${name}+${keyHashOf(name, key.publicKeyRaw).toString('hex')}+${encoded}`;
}

/** A parsed verifier key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyHash: Buffer;
  readonly publicKey: KeyObject;
  readonly publicKeyRaw: Buffer;
}

/** Parses a `<name>+<hash>+<key>` verifier key; InvalidRequest when malformed. */
export function parseVerifierKey(text: string): NoteVerifier {
  // Split at the first two "+" only: the base64 key may contain "+" itself.
  const trimmed = text.trim();
  const first = trimmed.indexOf('+');
  const second = first < 0 ? -1 : trimmed.indexOf('+', first + 1);
  const name = trimmed.slice(0, Math.max(first, 0));
  const hashHex = first < 0 ? '' : trimmed.slice(first + 1, second < 0 ? undefined : second);
  const keyB64 = second < 0 ? '' : trimmed.slice(second + 1);
  if (!name || !/^[0-9a-f]{8}$/i.test(hashHex) || !/^[A-Za-z0-9+/]+=*$/.test(keyB64)) {
    throw new InvalidRequest('a verifier key reads <name>+<8 hex digits>+<base64 key>');
  }
  const key = Buffer.from(keyB64, 'base64');
  if (key.length !== 33 || key[0] !== ED25519_ALG) throw new InvalidRequest('the verifier key is not an Ed25519 key (algorithm 0x01, 32 bytes)');
  const publicKeyRaw = key.subarray(1);
  const keyHash = keyHashOf(name, publicKeyRaw);
  if (keyHash.toString('hex') !== hashHex.toLowerCase()) throw new InvalidRequest('the verifier key hash does not match its name and key');
  const publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, publicKeyRaw]), format: 'der', type: 'spki' });
  return { name, keyHash, publicKey, publicKeyRaw: Buffer.from(publicKeyRaw) };
}

/** What a checkpoint says. */
export interface Checkpoint {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  /** Lines after the root hash, e.g. `time 2026-01-01T00:00:00.000Z`. */
  readonly extensions: readonly string[];
}

/** The checkpoint body (the text that is signed). */
export function checkpointBody(checkpoint: Checkpoint): string {
  if (!checkpoint.origin || checkpoint.origin.includes('\n')) throw new TypeError('a checkpoint origin is one non-empty line');
  if (checkpoint.rootHash.length !== HASH_SIZE) throw new TypeError('a checkpoint root hash has 32 bytes');
  const lines = [checkpoint.origin, String(checkpoint.treeSize), checkpoint.rootHash.toString('base64'), ...checkpoint.extensions];
  return `${lines.join('\n')}\n`;
}

/** Signs a checkpoint as a signed note under key `name`. */
export function signCheckpoint(checkpoint: Checkpoint, key: AuditSigningKey, name: string): string {
  checkKeyName(name);
  const body = checkpointBody(checkpoint);
  const signature = sign(null, Buffer.from(body, 'utf8'), key.privateKey);
  const blob = Buffer.concat([keyHashOf(name, key.publicKeyRaw), signature]).toString('base64');
  return `${body}\n${EM_DASH} ${name} ${blob}\n`;
}

/** Why a checkpoint note was refused. */
export class CheckpointRejected extends Error {
  readonly code = 'checkpoint_rejected';
}

/**
 * Opens a signed checkpoint note: it must carry a valid signature by
 * `verifier` (other signatures are ignored, as the signed-note spec says) and
 * a well-formed body. Throws CheckpointRejected otherwise.
 */
export function openCheckpoint(note: string, verifier: NoteVerifier): Checkpoint {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new CheckpointRejected('not a signed note: no blank line before the signatures');
  const body = note.slice(0, split + 1);
  const signatureLines = note.slice(split + 2, -1).split('\n');
  let signed = false;
  for (const line of signatureLines) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (!match) throw new CheckpointRejected(`malformed signature line: ${JSON.stringify(line.slice(0, 80))}`);
    const blob = Buffer.from(match[2] as string, 'base64');
    if (match[1] !== verifier.name || blob.length < 5 || !blob.subarray(0, 4).equals(verifier.keyHash)) continue;
    if (!verify(null, Buffer.from(body, 'utf8'), verifier.publicKey, blob.subarray(4))) {
      throw new CheckpointRejected(`the signature by ${verifier.name} does not verify: the checkpoint was altered or signed by another key`);
    }
    signed = true;
  }
  if (!signed) throw new CheckpointRejected(`the checkpoint carries no signature by ${verifier.name}+${verifier.keyHash.toString('hex')}`);
  return parseCheckpointBody(body);
}

/** Parses a checkpoint body without checking any signature (the caller did). */
export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (!origin || size === undefined || root === undefined) throw new CheckpointRejected('a checkpoint has an origin, a size and a root hash');
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) throw new CheckpointRejected(`bad tree size ${JSON.stringify(size)}`);
  const rootHash = Buffer.from(root, 'base64');
  if (rootHash.length !== HASH_SIZE || rootHash.toString('base64') !== root) throw new CheckpointRejected('the root hash is not 32 bytes of base64');
  if (extensions.some((line) => line === '')) throw new CheckpointRejected('a checkpoint has no empty extension lines');
  return { origin, treeSize: Number(size), rootHash, extensions };
}
