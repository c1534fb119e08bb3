/**
 * The NonceTracker (src/cwmp/nonce-tracker.ts) of several instances: one Redis hash per nonce
 * (P nonce:<nonce> = { nc, dev }), expiring with the nonce, changed by one Lua script per call so
 * that two instances serving the same nonce at once cannot both accept the same nc.
 */
import type { Redis } from 'ioredis';
import type { NonceTracker } from '../cwmp/nonce-tracker.js';

const USE = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'nc') or '-1')
if tonumber(ARGV[1]) <= cur then return 0 end
redis.call('HSET', KEYS[1], 'nc', ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

const BIND = `
local d = redis.call('HGET', KEYS[1], 'dev')
if d then if d == ARGV[1] then return 1 else return 0 end end
redis.call('HSET', KEYS[1], 'dev', ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

type WithScripts = Redis & {
  cupNonceUse(key: string, nc: string, ttl: string): Promise<number>;
  cupNonceBind(key: string, dev: string, ttl: string): Promise<number>;
};

export class RedisNonceTracker implements NonceTracker {
  private readonly redis: WithScripts;

  /** key: builds a key with the store's prefix (RedisStore.key). */
  constructor(
    redis: Redis,
    private readonly key: (...parts: string[]) => string,
  ) {
    if (!('cupNonceUse' in redis)) {
      redis.defineCommand('cupNonceUse', { numberOfKeys: 1, lua: USE });
      redis.defineCommand('cupNonceBind', { numberOfKeys: 1, lua: BIND });
    }
    this.redis = redis as WithScripts;
  }

  async use(nonce: string, nc: number, ttlMs: number): Promise<'ok' | 'replay'> {
    const r = await this.redis.cupNonceUse(this.key('nonce', nonce), String(nc), String(Math.max(1, Math.ceil(ttlMs))));
    return r === 1 ? 'ok' : 'replay';
  }

  async bind(nonce: string, deviceKey: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.cupNonceBind(this.key('nonce', nonce), deviceKey, String(Math.max(1, Math.ceil(ttlMs))))) === 1;
  }
}
