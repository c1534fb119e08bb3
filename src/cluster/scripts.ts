/**
 * The Redis primitives of the CWMP SessionState (redis-session-state.ts): one Lua script per
 * write, so that a step costs one round trip and the writes of two instances never interleave
 * (Redis runs a script atomically), and each reads and writes the session hash once: every command
 * inside a script counts toward the Redis cost of a USP Get (docs/scaling.md). They decide nothing: what to write comes from the session
 * machine (src/cwmp/session-machine.ts); a script refuses a write computed on an older `seq`.
 * Keys follow src/store/redis.ts (prefix P):
 *
 *   P s:<sid>      HASH  dk v mk ek n seq lp, and the RPC in flight: inf (id) info (origin) infm (method) infl (linger)
 *                  infj (its JSON: its record is taken out of rpc:<id> when it is claimed)
 *   P lease:<dk>   "<sid>@<instance>": the device's session and the instance that wrote its latest step
 *   P q:<dk>       LIST  queued RPC ids (FIFO);  P rpc:<id> its JSON while queued (expires two
 *                  session timeouts after its deadline);  P qdevs  devices whose queue is not empty
 *   P wake:<dk>    the instance sending the device a connection request (short lock)
 *
 * Keys are built inside the scripts: this needs one Redis (or a primary with replicas), not a
 * Redis Cluster, whose scripts must declare their keys; GETDEL needs Redis 6.2.
 */
import type { Redis } from 'ioredis';

/** The session hash fields, in the order every script returns them. */
export const SESSION_FIELDS = ['dk', 'v', 'mk', 'ek', 'inf', 'info', 'infm', 'infl', 'n', 'seq', 'lp'] as const;

const PRELUDE = `
local P = ARGV[1]
local FIELDS = {${SESSION_FIELDS.map((f) => `'${f}'`).join(', ')}}
-- Besides: xat, when the hash's expiry and the lease were last set (ms, the writer's clock), lw,
-- the instance the lease names, infj, the JSON of the RPC in flight, and qe, '1' when this
-- session's last claim found the queue empty (and took the device out of qdevs).
local ALL = {unpack(FIELDS)}
table.insert(ALL, 'xat')
table.insert(ALL, 'lw')
table.insert(ALL, 'infj')
table.insert(ALL, 'qe')
-- The session hash read once into a table by field name ('' for an absent field), nil when there
-- is no session; a script then works on the table and writes it back once (one HMGET, one HSET).
local function read(skey)
  local h = redis.call('HMGET', skey, unpack(ALL))
  if not h[1] then return nil end
  local s = {}
  for i = 1, #ALL do s[ALL[i]] = h[i] or '' end
  return s
end
local function list(s)
  local out = {}
  for i = 1, #FIELDS do out[i] = s[FIELDS[i]] end
  return out
end
local function lease_names(l, sid)
  return l and string.sub(l, 1, #sid + 1) == (sid .. '@')
end
-- Takes the session's RPC in flight out of it; returns its JSON ('' if none, or when it is the
-- RPC \`known\`, whose JSON the caller kept from its claim). Its JSON is in the hash (claim); a
-- session written by an earlier version has it in rpc:<id> still.
local function take(s, known)
  local id = s.inf
  if id == '' then return '' end
  local j = s.infj
  if j == '' then j = redis.call('GETDEL', P .. 'rpc:' .. id) or '' end
  s.inf, s.info, s.infm, s.infl, s.infj = '', '', '', '0', ''
  if id == known then return '' end
  return j
end
-- Claims the device's next readable queued RPC as the session's RPC in flight: json, more; or nil.
-- more (how many are still queued) is counted only when asked for (cwmp:HoldRequests), else -1.
-- A device whose list is non-empty is in qdevs; one whose list was emptied may stay there until a
-- session of it finds the list empty, which removes it: a session that claimed RPCs (n > 0) once
-- (qe), or the claim that emptied it when more was counted. So a claim needs no LLEN, and a
-- session that never claims (most Informs) no SREM. A stale member costs listAllQueuedRpcs an
-- empty LRANGE until the device's next RPC.
local function claim(s, dk, count)
  local q = P .. 'q:' .. dk
  local popped = false
  while true do
    local id = redis.call('LPOP', q)
    if not id then break end
    popped = true
    -- The record moves into the session hash: one command, and none when it is taken.
    local j = redis.call('GETDEL', P .. 'rpc:' .. id)
    local ok, o = false, nil
    if j then ok, o = pcall(cjson.decode, j) end
    if j and ok and type(o) == 'table' and type(o.rpc) == 'table' and type(o.rpc.method) == 'string' then
      local origin = o.origin
      if type(origin) ~= 'string' then origin = '' end
      s.inf, s.info, s.infm, s.infl, s.infj, s.qe = id, origin, o.rpc.method, (o.linger == true) and '1' or '0', j, ''
      s.n = tostring((tonumber(s.n) or 0) + 1)
      local more = -1
      if count then
        more = redis.call('LLEN', q)
        if more == 0 then redis.call('SREM', P .. 'qdevs', dk) end
      end
      return j, more
    end
    -- Unreadable: it can never be sent (GETDEL removed it).
  end
  if popped or ((tonumber(s.n) or 0) > 0 and s.qe ~= '1') then redis.call('SREM', P .. 'qdevs', dk) end
  s.qe = '1'
  return nil, 0
end
`;

/**
 * A new session; the device's previous one (named by its lease) is removed with its RPC in flight.
 * ARGV: P sid me ttl dk v mk ek now. Returns {queued, previous sid, taken json, previous fields...}.
 */
const OPEN = `
local sid, me, ttl, dk = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local l = P .. 'lease:' .. dk
local old = redis.call('GET', l)
local prev, j, h = '', '', {}
if old then
  local at = string.find(old, '@', 1, true)
  if at then
    local osid = string.sub(old, 1, at - 1)
    local okey = P .. 's:' .. osid
    local s = read(okey)
    if s then
      prev = osid
      h = list(s)
      j = take(s, '')
      redis.call('DEL', okey)
    end
  end
end
local skey = P .. 's:' .. sid
redis.call('HSET', skey, 'dk', dk, 'v', ARGV[6], 'mk', ARGV[7], 'ek', ARGV[8], 'inf', '', 'info', '', 'infm', '', 'infl', '0', 'infj', '', 'n', 0, 'seq', 1, 'lp', 1, 'xat', ARGV[9], 'lw', me)
redis.call('PEXPIRE', skey, ttl * 2)
redis.call('SET', l, sid .. '@' .. me, 'PX', ttl)
-- The device is here: the next RPC queued after this session needs a new connection request.
redis.call('DEL', P .. 'wake:' .. dk)
return {redis.call('LLEN', P .. 'q:' .. dk), prev, j, unpack(h)}
`;

/**
 * One step of a session, if its seq is still ARGV[5]. ARGV: P sid me ttl seq post take next end now known count,
 * next = '' | 'end' | 'linger', known = the id of an RPC whose JSON the caller has (not returned when taken). The session hash lives 2x the timeout, so that the serving
 * instance's timer acts first; the lease names the instance that wrote the step and lives the
 * timeout. Both are set again only when another instance writes or half the timeout has passed
 * since they were set (so the lease outlives every step by at least half the timeout): most steps
 * of a short session write the hash alone.
 * Returns {'gone'} | {'stale', fields...} | {'ok', ended, taken json, next kind, next json, more, queued, fields...}.
 */
const APPLY = `
local sid, me, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local skey = P .. 's:' .. sid
local s = read(skey)
if not s then return {'gone'} end
if s.seq ~= ARGV[5] then return {'stale', unpack(list(s))} end
local dk = s.dk
s.seq = tostring((tonumber(s.seq) or 0) + 1)
if ARGV[6] == '1' then s.lp = s.seq end
local j = ''
if ARGV[7] == '1' then j = take(s, ARGV[11]) end
local ended = ARGV[9] == '1'
local nk, nj, more, queued = '', '', 0, nil
if not ended and ARGV[8] ~= '' then
  local cj, cm = claim(s, dk, ARGV[12] == '1')
  if cj then
    nk, nj, more, queued = 'claimed', cj, cm, cm
  else
    nk, queued = 'empty', 0
    ended = ARGV[8] == 'end'
  end
end
local now = tonumber(ARGV[10]) or 0
local d = now - (tonumber(s.xat) or 0)
-- The lease this instance set less than half the timeout ago has not expired, so it still names
-- this session: a new session of the device would have removed this one on reading it (OPEN).
local own = s.lw == me and d >= 0 and d < ttl / 2
if ended then
  redis.call('DEL', skey)
  local l = P .. 'lease:' .. dk
  if own or lease_names(redis.call('GET', l), sid) then redis.call('DEL', l) end
else
  if own then
    redis.call('HSET', skey, 'seq', s.seq, 'lp', s.lp, 'inf', s.inf, 'info', s.info, 'infm', s.infm, 'infl', s.infl, 'infj', s.infj, 'qe', s.qe, 'n', s.n)
  else
    redis.call('HSET', skey, 'seq', s.seq, 'lp', s.lp, 'inf', s.inf, 'info', s.info, 'infm', s.infm, 'infl', s.infl, 'infj', s.infj, 'qe', s.qe, 'n', s.n, 'xat', ARGV[10], 'lw', me)
    redis.call('PEXPIRE', skey, ttl * 2)
    redis.call('SET', P .. 'lease:' .. dk, sid .. '@' .. me, 'PX', ttl)
  end
end
if queued == nil then queued = redis.call('LLEN', P .. 'q:' .. dk) end
return {'ok', ended and '1' or '0', j, nk, nj, more, queued, unpack(list(s))}
`;

/**
 * ARGV: P id dk json front origin ttl wake (origin: the instance whose caller waits, or ''). The RPC's record lives until its deadline plus two
 * session timeouts (claimed by then or dropped). A device with no session is woken by one
 * instance: with `wake` (ms) the script also takes the device's wake lock. Returns
 * {lease ("<sid>@<instance>") or '', '1' when this call took the wake lock}.
 */
const ENQUEUE = `
local id, dk = ARGV[2], ARGV[3]
redis.call('SET', P .. 'rpc:' .. id, ARGV[4], 'PX', ARGV[7])
local q = P .. 'q:' .. dk
local n
if ARGV[5] == '1' then n = redis.call('LPUSH', q, id) else n = redis.call('RPUSH', q, id) end
if n == 1 then redis.call('SADD', P .. 'qdevs', dk) end
local lease = redis.call('GET', P .. 'lease:' .. dk)
if lease then return {lease, '0'} end
if ARGV[8] ~= '' and redis.call('SET', P .. 'wake:' .. dk, ARGV[6], 'NX', 'PX', ARGV[8]) then return {'', '1'} end
return {'', '0'}
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
    return strings(await this.call.cupOpen!(this.prefix, sid, me, ttl, dk, version, modelKey, endpointId, Date.now()));
  }

  /**
   * `known`: the id of an RPC whose JSON the caller kept from its claim; taken, it comes back as ''.
   * `count`: count the RPCs still queued after a claim (else `more` is -1).
   */
  async apply(
    sid: string,
    me: string,
    ttl: number,
    seq: number,
    post: boolean,
    take: boolean,
    next: NextMode,
    end: boolean,
    known = '',
    count = false,
  ): Promise<string[]> {
    return strings(
      await this.call.cupApply!(
        this.prefix,
        sid,
        me,
        ttl,
        String(seq),
        post ? '1' : '0',
        take ? '1' : '0',
        next,
        end ? '1' : '0',
        Date.now(),
        known,
        count ? '1' : '',
      ),
    );
  }

  /** `ttlMs`: how long the RPC's record lives; `wakeMs`: take the wake lock for that long when the device has no session (0: never). */
  async enqueue(
    id: string,
    dk: string,
    json: string,
    front: boolean,
    origin: string,
    ttlMs: number,
    wakeMs: number,
  ): Promise<{ lease: string | null; woken: boolean }> {
    const r = strings(
      await this.call.cupEnqueue!(this.prefix, id, dk, json, front ? '1' : '0', origin, Math.max(1, Math.ceil(ttlMs)), wakeMs > 0 ? wakeMs : ''),
    );
    return { lease: r[0] || null, woken: r[1] === '1' };
  }
}

function strings(r: unknown): string[] {
  return (r as unknown[]).map((x) => String(x));
}
