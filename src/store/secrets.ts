/**
 * Per-device secrets at rest (issue 14 item 10): a pure codec that seals a stored secret
 * (connection request password, CPE password) with AES-256-GCM under the operator's key and
 * opens it again. A sealed value is tagged `enc:v1:<key id>:<base64 nonce|tag|ciphertext>`, so
 * values written before a key was configured (plain) are still read, and sealed on their next
 * write. The key id (8 hex digits of SHA-256 of the key) names which key sealed a value: a wrong
 * key is reported as such instead of as a corrupt value. The additional data is the field's name,
 * so a sealed password cannot be moved into another field unnoticed; it is not the device key,
 * which a migration may rewrite.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const SEALED_PREFIX = 'enc:v1:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SECRET_KEY_BYTES = 32;

/** A key that is malformed, missing for sealed values, or not the one that sealed them: start-up fails with it. */
export class SecretKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretKeyError';
  }
}

/** 8 hex digits naming a key (not secret: 32 bits of a hash of 256 random bits). */
export function secretKeyId(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** The key from its base64 text (a file's content or the environment variable); `source` names it in errors. */
export function parseSecretKey(text: string, source: string): Buffer {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) throw new SecretKeyError(`${source}: expected ${SECRET_KEY_BYTES} bytes in base64 (e.g. openssl rand -base64 32)`);
  const key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== SECRET_KEY_BYTES)
    throw new SecretKeyError(`${source}: expected ${SECRET_KEY_BYTES} bytes in base64 (e.g. openssl rand -base64 32), got ${key.length} bytes`);
  return key;
}

export function isSealed(stored: string): boolean {
  return stored.startsWith(SEALED_PREFIX);
}

export interface SecretCodec {
  /** The configured key's id, or null when secrets are stored plain. */
  readonly keyId: string | null;
  /** The value to store for `plain` in `field` (sealed when a key is configured). */
  seal(field: string, plain: string | null): string | null;
  /** The secret of a stored value of `field`, plain or sealed; throws SecretKeyError when it cannot be opened. */
  open(field: string, stored: string | null): string | null;
}

/** Stores secrets as given (no key configured); still opens nothing sealed, with a clear error. */
export const PLAIN_SECRETS: SecretCodec = secretCodec(null);

export function secretCodec(key: Uint8Array | null): SecretCodec {
  if (key !== null && key.length !== SECRET_KEY_BYTES) throw new SecretKeyError(`secret key must be ${SECRET_KEY_BYTES} bytes`);
  const keyId = key ? secretKeyId(key) : null;
  return {
    keyId,
    seal(field, plain) {
      if (plain === null || key === null) return plain;
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.from(field, 'utf8'));
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `${SEALED_PREFIX}${keyId}:${Buffer.concat([nonce, cipher.getAuthTag(), ct]).toString('base64')}`;
    },
    open(field, stored) {
      if (stored === null || !isSealed(stored)) return stored;
      const rest = stored.slice(SEALED_PREFIX.length);
      const colon = rest.indexOf(':');
      const id = colon > 0 ? rest.slice(0, colon) : '';
      if (key === null) {
        throw new SecretKeyError(
          `the store holds secrets sealed with key ${id || '(unknown)'}, and no key is configured (store.secretKeyFile or CWMP_USP_PROXY_SECRET_KEY)`,
        );
      }
      if (id !== keyId) throw new SecretKeyError(`the store holds secrets sealed with key ${id || '(unknown)'}, not with the configured key ${keyId}`);
      const raw = Buffer.from(rest.slice(colon + 1), 'base64');
      if (raw.length < NONCE_BYTES + TAG_BYTES) throw new SecretKeyError(`a sealed ${field} is truncated`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE_BYTES));
        decipher.setAAD(Buffer.from(field, 'utf8'));
        decipher.setAuthTag(raw.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
        return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        // Same key id, failed authentication: altered bytes (or a key id collision).
        throw new SecretKeyError(`a sealed ${field} does not authenticate under key ${keyId}: altered, or sealed with another key`);
      }
    },
  };
}

/** The fields of a DeviceRecord stored sealed. Usernames stay plain: they are sent in clear (Digest) and may be looked up. */
export const SEALED_DEVICE_FIELDS = ['connReqPassword', 'cpePassword'] as const;
