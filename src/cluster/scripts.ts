/**
 * The Redis primitives of the CWMP SessionState (redis-session-state.ts): one Lua script per
 * write, so that a step costs one round trip and the writes of two instances never interleave
 * (Redis runs a script atomically). They decide nothing: what to write comes from the session
 * machine (src/cwmp/session-machine.ts); a script refuses a write computed on an older `seq`.
 * Keys follow src/store/redis.ts (prefix P):
 *
 *   P s:<sid>      HASH  dk v mk ek n seq lp, and the RPC in flight: inf (id) info (origin) infm (method) infl (linger)
 *   P lease:<dk>   "<sid>@<instance>": the device's session and the instance that wrote its latest step
 *   P q:<dk>       LIST  queued RPC ids (FIFO);  P rpc:<id> its JSON;  P qdevs  devices with a queue
 *   P io:<inst>    SET   RPC ids whose caller waits on that instance (taken over when it dies)
 *   P wake:<dk>    the instance sending the device a connection request (short lock)
 *
 * Keys are built inside the scripts: this needs one Redis (or a primary with replicas), not a
 * Redis Cluster, whose scripts must declare their keys.
 */
import type { Redis } from 'ioredis';

/** The session hash fields, in the order every script returns them. */
export const SESSION_FIELDS = ['dk', 'v', 'mk', 'ek', 'inf', 'info', 'infm', 'infl', 'n', 'seq', 'lp'] as const;

const PRELUDE = `
local P = ARGV[1]
local FIELDS = {${SESSION_FIELDS.map((f) => `'${f}'`).join(', ')}}
local function fields(skey)
  local h = redis.call('HMGET', skey, unpack(FIELDS))
  for i = 1, #h do if not h[i] then h[i] = '' end end
  return h
end
local function lease_names(l, sid)
  return l and string.sub(l, 1, #sid + 1) == (sid .. '@')
end
-- Removes the session's RPC in flight; returns {id, json} or nil.
local function take(skey)
  local h = redis.call('HMGET', skey, 'inf', 'info')
  local id = h[1]
  if not id or id == '' then return nil end
  local j = redis.call('GET', P .. 'rpc:' .. id) or ''
  redis.call('DEL', P .. 'rpc:' .. id)
  if h[2] and h[2] ~= '' then redis.call('SREM', P .. 'io:' .. h[2], id) end
  redis.call('HSET', skey, 'inf', '', 'info', '', 'infm', '', 'infl', '0')
  return {id, j}
end
-- Claims the device's next readable queued RPC as the session's RPC in flight: {json, more} or nil.
local function claim(skey, dk, ttl)
  local q = P .. 'q:' .. dk
  while true do
    local id = redis.call('LPOP', q)
    if not id then break end
    local j = redis.call('GET', P .. 'rpc:' .. id)
    local ok, o = false, nil
    if j then ok, o = pcall(cjson.decode, j) end
    if j and ok and type(o) == 'table' and type(o.rpc) == 'table' and type(o.rpc.method) == 'string' then
      local origin = o.origin
      if type(origin) ~= 'string' then origin = '' end
      redis.call('PEXPIRE', P .. 'rpc:' .. id, ttl * 2)
      redis.call('HSET', skey, 'inf', id, 'info', origin, 'infm', o.rpc.method, 'infl', (o.linger == true) and '1' or '0')
      redis.call('HINCRBY', skey, 'n', 1)
      local more = redis.call('LLEN', q)
      if more == 0 then redis.call('SREM', P .. 'qdevs', dk) end
      return {j, more}
    end
    -- Unreadable: it can never be sent.
    if j then redis.call('DEL', P .. 'rpc:' .. id) end
  end
  redis.call('SREM', P .. 'qdevs', dk)
  return nil
end
`;

/**
 * A new session; the device's previous one (named by its lease) is removed with its RPC in flight.
 * ARGV: P sid me ttl dk v mk ek. Returns {queued, previous sid, taken json, previous fields...}.
 */
const OPEN = `
local sid, me, ttl, dk = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local l = P .. 'lease:' .. dk
local old = redis.call('GET', l)
local prev, j, h = '', '', {}
if old then
  local at = string.find(old, '@', 1, true)
  if at then
    local okey = P .. 's:' .. string.sub(old, 1, at - 1)
    if redis.call('EXISTS', okey) == 1 then
      prev = string.sub(old, 1, at - 1)
      h = fields(okey)
      local t = take(okey)
      if t then j = t[2] end
      redis.call('DEL', okey)
    end
  end
end
local skey = P .. 's:' .. sid
redis.call('HSET', skey, 'dk', dk, 'v', ARGV[6], 'mk', ARGV[7], 'ek', ARGV[8], 'inf', '', 'info', '', 'infm', '', 'infl', '0', 'n', 0, 'seq', 1, 'lp', 1)
redis.call('PEXPIRE', skey, ttl * 2)
redis.call('SET', l, sid .. '@' .. me, 'PX', ttl)
-- The device is here: the next RPC queued after this session needs a new connection request.
redis.call('DEL', P .. 'wake:' .. dk)
return {redis.call('LLEN', P .. 'q:' .. dk), prev, j, unpack(h)}
`;

/**
 * One step of a session, if its seq is still ARGV[5]. ARGV: P sid me ttl seq post take next end,
 * next = '' | 'end' | 'linger'. The session hash lives 2x the timeout, so that the serving
 * instance's timer acts first; the lease names the instance that wrote the step.
 * Returns {'gone'} | {'stale', fields...} | {'ok', ended, taken json, next kind, next json, more, queued, fields...}.
 */
const APPLY = `
local sid, me, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local skey = P .. 's:' .. sid
if redis.call('EXISTS', skey) == 0 then return {'gone'} end
local h = fields(skey)
if h[10] ~= ARGV[5] then return {'stale', unpack(h)} end
local dk = h[1]
local seq = redis.call('HINCRBY', skey, 'seq', 1)
if ARGV[6] == '1' then redis.call('HSET', skey, 'lp', seq) end
local j = ''
if ARGV[7] == '1' then
  local t = take(skey)
  if t then j = t[2] end
end
local ended = ARGV[9] == '1'
local nk, nj, more = '', '', 0
if not ended and ARGV[8] ~= '' then
  local c = claim(skey, dk, ttl)
  if c then
    nk, nj, more = 'claimed', c[1], c[2]
  else
    nk = 'empty'
    ended = ARGV[8] == 'end'
  end
end
local after = fields(skey)
if ended then
  redis.call('DEL', skey)
  local l = P .. 'lease:' .. dk
  if lease_names(redis.call('GET', l), sid) then redis.call('DEL', l) end
else
  redis.call('PEXPIRE', skey, ttl * 2)
  redis.call('SET', P .. 'lease:' .. dk, sid .. '@' .. me, 'PX', ttl)
end
return {'ok', ended and '1' or '0', j, nk, nj, more, redis.call('LLEN', P .. 'q:' .. dk), unpack(after)}
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

type Caller = (...args: (string | number)[]) => Promise<unknown>;

export type NextMode = '' | 'end' | 'linger';

export class SessionScripts {
  private readonly call: Record<string, Caller>;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    const defs = { cupOpen: OPEN, cupApply: APPLY, cupEnqueue: ENQUEUE };
    for (const [name, body] of Object.entries(defs)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 0, lua: PRELUDE + body });
    }
    const r = redis as unknown as Record<string, Caller>;
    this.call = Object.fromEntries(Object.keys(defs).map((n) => [n, (...a: (string | number)[]) => r[n]!.call(redis, ...a)]));
  }

  async open(sid: string, me: string, ttl: number, dk: string, version: string, modelKey: string, endpointId: string): Promise<string[]> {
    return strings(await this.call.cupOpen!(this.prefix, sid, me, ttl, dk, version, modelKey, endpointId));
  }

  async apply(sid: string, me: string, ttl: number, seq: number, post: boolean, take: boolean, next: NextMode, end: boolean): Promise<string[]> {
    return strings(await this.call.cupApply!(this.prefix, sid, me, ttl, String(seq), post ? '1' : '0', take ? '1' : '0', next, end ? '1' : '0'));
  }

  async enqueue(id: string, dk: string, json: string, front: boolean, origin: string): Promise<string | null> {
    const r = await this.call.cupEnqueue!(this.prefix, id, dk, json, front ? '1' : '0', origin);
    return typeof r === 'string' ? r : null;
  }
}

function strings(r: unknown): string[] {
  return (r as unknown[]).map((x) => String(x));
}
