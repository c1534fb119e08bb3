/**
 * The CWMP session state machine's Redis side: one Lua script per step, so that each POST of a
 * CPE costs one round trip and the steps of two instances never interleave (Redis runs a script
 * atomically). Keys follow src/store/redis.ts (prefix P):
 *
 *   P s:<sid>      HASH  dk v mk ek seq n, and the RPC in flight: inf (id) info (origin) infm (method) infl (linger)
 *   P lease:<dk>   "<sid>@<instance>": the device's session and the instance that served its last POST
 *   P q:<dk>       LIST  queued RPC ids (FIFO);  P rpc:<id> its JSON;  P qdevs  devices with a queue
 *   P io:<inst>    SET   RPC ids whose caller waits on that instance (taken over when it dies)
 *
 * Keys are built inside the scripts: this needs one Redis (or a primary with replicas), not a
 * Redis Cluster, whose scripts must declare their keys.
 */
import type { Redis } from 'ioredis';

const PRELUDE = `
local P = ARGV[1]
local function lease_names(l, sid)
  return l and string.sub(l, 1, #sid + 1) == (sid .. '@')
end
-- The RPC in flight in a session: removed, returned as {id, origin, method, json}.
local function take(skey)
  local h = redis.call('HMGET', skey, 'inf', 'info', 'infm')
  local id = h[1]
  if not id or id == '' then return nil end
  local j = redis.call('GET', P .. 'rpc:' .. id) or ''
  redis.call('DEL', P .. 'rpc:' .. id)
  if h[2] and h[2] ~= '' then redis.call('SREM', P .. 'io:' .. h[2], id) end
  redis.call('HSET', skey, 'inf', '', 'info', '', 'infm', '', 'infl', '0')
  return {id, h[2] or '', h[3] or '', j}
end
-- The ACS's turn: claim the next queued RPC, or (unless lingering) end the session.
local function next_or_end(skey, sid, dk, ttl, linger)
  local q = P .. 'q:' .. dk
  while true do
    local id = redis.call('LPOP', q)
    if not id then break end
    local j = redis.call('GET', P .. 'rpc:' .. id)
    local ok, o = false, nil
    if j then ok, o = pcall(cjson.decode, j) end
    if j and not (ok and type(o) == 'table' and type(o.rpc) == 'table' and type(o.rpc.method) == 'string') then
      -- Unreadable: it can never be sent. Drop it and claim the next one.
      redis.call('DEL', P .. 'rpc:' .. id)
      j = nil
    end
    if j then
      local origin = o.origin
      if type(origin) ~= 'string' then origin = '' end
      redis.call('PEXPIRE', P .. 'rpc:' .. id, ttl * 2)
      redis.call('HSET', skey, 'inf', id, 'info', origin, 'infm', o.rpc.method, 'infl', (o.linger == true) and '1' or '0')
      redis.call('HINCRBY', skey, 'n', 1)
      if redis.call('LLEN', q) == 0 then redis.call('SREM', P .. 'qdevs', dk) end
      return {'rpc', j}
    end
  end
  redis.call('SREM', P .. 'qdevs', dk)
  if linger == '1' then return {'linger', ''} end
  redis.call('DEL', skey)
  local l = P .. 'lease:' .. dk
  if lease_names(redis.call('GET', l), sid) then redis.call('DEL', l) end
  return {'end', ''}
end
-- Every POST: the session lives on (hash for 2x the timeout, so the serving instance's timer
-- acts first) and the lease names this instance.
local function refresh(skey, sid, dk, me, ttl)
  local seq = redis.call('HINCRBY', skey, 'seq', 1)
  redis.call('PEXPIRE', skey, ttl * 2)
  redis.call('SET', P .. 'lease:' .. dk, sid .. '@' .. me, 'PX', ttl)
  return seq
end
`;

/** ARGV: P sid me ttl mode(resp|fault|empty|touch) responseMethod lingerAllowed */
const POST = `
local sid, me, ttl, mode = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local skey = P .. 's:' .. sid
local h = redis.call('HMGET', skey, 'dk', 'v', 'mk', 'ek', 'infm', 'infl')
local dk = h[1]
if not dk then return {'nosession'} end
local v, mk, ek = h[2] or '', h[3] or '', h[4] or ''
if mode == 'resp' or mode == 'fault' then
  local m = h[5] or ''
  if m == '' then return {'noinflight', dk, v, mk, ek} end
  if mode == 'resp' and ARGV[6] ~= m .. 'Response' then return {'mismatch', dk, v, mk, ek, m} end
end
local seq = refresh(skey, sid, dk, me, ttl)
if mode == 'touch' then return {'ok', dk, v, mk, ek, seq} end
local linger = '0'
if mode ~= 'empty' and h[6] == '1' and ARGV[7] == '1' then linger = '1' end
local took = take(skey) or {'', '', '', ''}
local r = next_or_end(skey, sid, dk, ttl, linger)
return {r[1], dk, v, mk, ek, seq, took[1], took[2], took[3], took[4], r[2]}
`;

/** After lingering. ARGV: P sid me ttl */
const NEXT = `
local sid, me, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local skey = P .. 's:' .. sid
local h = redis.call('HMGET', skey, 'dk', 'inf')
if not h[1] then return {'nosession'} end
local seq = refresh(skey, sid, h[1], me, ttl)
local r = next_or_end(skey, sid, h[1], ttl, '0')
return {r[1], seq, r[2]}
`;

/** A new session; a previous one of the device is ended. ARGV: P sid me ttl dk v mk ek */
const INFORM = `
local sid, me, ttl, dk = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local l = P .. 'lease:' .. dk
local old = redis.call('GET', l)
local took = {'', '', '', ''}
if old then
  local at = string.find(old, '@', 1, true)
  if at then
    local okey = P .. 's:' .. string.sub(old, 1, at - 1)
    if redis.call('EXISTS', okey) == 1 then
      took = take(okey) or took
      redis.call('DEL', okey)
    end
  end
end
local skey = P .. 's:' .. sid
redis.call('HSET', skey, 'dk', dk, 'v', ARGV[6], 'mk', ARGV[7], 'ek', ARGV[8], 'inf', '', 'info', '', 'infm', '', 'infl', '0', 'n', 0, 'seq', 1)
redis.call('PEXPIRE', skey, ttl * 2)
redis.call('SET', l, sid .. '@' .. me, 'PX', ttl)
-- The device is here: the next RPC queued after this session needs a new connection request.
redis.call('DEL', P .. 'wake:' .. dk)
return {took[1], took[2], took[3], redis.call('LLEN', P .. 'q:' .. dk)}
`;

/** The serving instance's session timer: ends the session only if no POST came since. ARGV: P sid seq */
const EXPIRE = `
local skey = P .. 's:' .. ARGV[2]
local h = redis.call('HMGET', skey, 'dk', 'seq')
if not h[1] then return {'gone'} end
if h[2] ~= ARGV[3] then return {'alive'} end
local took = take(skey) or {'', '', '', ''}
redis.call('DEL', skey)
local l = P .. 'lease:' .. h[1]
if lease_names(redis.call('GET', l), ARGV[2]) then redis.call('DEL', l) end
return {'expired', h[1], took[1], took[2], took[3], redis.call('LLEN', P .. 'q:' .. h[1])}
`;

/** ARGV: P id dk json front origin. Returns the device's lease ("<sid>@<instance>") or nil. */
const ENQUEUE = `
local id, dk = ARGV[2], ARGV[3]
redis.call('SET', P .. 'rpc:' .. id, ARGV[4])
if ARGV[5] == '1' then redis.call('LPUSH', P .. 'q:' .. dk, id) else redis.call('RPUSH', P .. 'q:' .. dk, id) end
redis.call('SADD', P .. 'qdevs', dk)
if ARGV[6] ~= '' then redis.call('SADD', P .. 'io:' .. ARGV[6], id) end
return redis.call('GET', P .. 'lease:' .. dk)
`;

type Reply = (string | number)[];
type Caller = (...args: (string | number)[]) => Promise<unknown>;

export type PostMode = 'resp' | 'fault' | 'empty' | 'touch';

export class SessionScripts {
  private readonly call: Record<string, Caller>;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    const defs = { cupPost: POST, cupNext: NEXT, cupInform: INFORM, cupExpire: EXPIRE, cupEnqueue: ENQUEUE };
    for (const [name, body] of Object.entries(defs)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 0, lua: PRELUDE + body });
    }
    const r = redis as unknown as Record<string, Caller>;
    this.call = Object.fromEntries(Object.keys(defs).map((n) => [n, (...a: (string | number)[]) => r[n]!.call(redis, ...a)]));
  }

  async post(sid: string, me: string, ttl: number, mode: PostMode, responseMethod: string, lingerAllowed: boolean): Promise<string[]> {
    return strings(await this.call.cupPost!(this.prefix, sid, me, ttl, mode, responseMethod, lingerAllowed ? '1' : '0'));
  }

  async next(sid: string, me: string, ttl: number): Promise<string[]> {
    return strings(await this.call.cupNext!(this.prefix, sid, me, ttl));
  }

  async inform(sid: string, me: string, ttl: number, dk: string, version: string, modelKey: string, endpointId: string): Promise<string[]> {
    return strings(await this.call.cupInform!(this.prefix, sid, me, ttl, dk, version, modelKey, endpointId));
  }

  async expire(sid: string, seq: number): Promise<string[]> {
    return strings(await this.call.cupExpire!(this.prefix, sid, String(seq)));
  }

  async enqueue(id: string, dk: string, json: string, front: boolean, origin: string): Promise<string | null> {
    const r = await this.call.cupEnqueue!(this.prefix, id, dk, json, front ? '1' : '0', origin);
    return typeof r === 'string' ? r : null;
  }
}

function strings(r: unknown): string[] {
  return (r as Reply).map((x) => String(x));
}
