//! The Lua scripts that change the shared state, each atomically with the log entry
//! that announces the change.
//!
//! Every script takes `ARGV[1]` the key prefix (`{chat}` by default: one hash tag, so
//! every key lives in one slot), `ARGV[2]` the calling node's id and `ARGV[3]` its
//! operation number, then its own arguments. Key names are derived from ids inside
//! the scripts, which standalone Redis (and Sentinel) allows and Redis Cluster does
//! not promise; the README says so.
//!
//! Scripts never raise errors: they answer a status array (`{'ok', …}`, `{'nosuch'}`,
//! `{'fenced'}`, …), so one refusal does not fail a whole pipeline.
//!
//! # Keys
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:epoch` | string | random, set once; a different or missing one means Redis lost its data |
//! | `P:room_seq` | string | the last room id handed out (never goes down) |
//! | `P:rooms` | zset | room id → id, the rooms that exist |
//! | `P:room:<id>` | hash | `title`, `jseq` (join counter), `owner` (a registered room's account key), `moderation` (its operators, bans, topic: `Moderation::to_text`) and `mod_ms`, `mod_seq` (the log entry it is true at) |
//! | `P:room:<id>:who` | hash | member → account key ␟ address, as it joined (a registered room's ranks and bans) |
//! | `P:room:<id>:order` | zset | member → join number |
//! | `P:room:<id>:names` | hash | member → display name |
//! | `P:room:<id>:history` | list | a registered room's recent chats, `stream id ␟ name ␟ text`, oldest first |
//! | `P:accounts` | hash | name key → `name ␟ password hash ␟ created ms` |
//! | `P:tokens` | hash | token hash → `account key ␟ expires ms` |
//! | `P:account:<key>:tokens` | set | the account's token hashes |
//! | `P:ignore:<node>:<client>` | set | the name keys a client ignores (direct messages) |
//! | `P:node:<node>:ignoring` | set | the node's clients that ignore someone (for the reaper) |
//! | `P:nodes` | zset | node → deadline (ms, Redis's clock) |
//! | `P:reaping` | set | dead nodes whose members are being removed |
//! | `P:node:<node>` | hash | client → room, the node's members (for the reaper) |
//! | `P:node:<node>:names` | hash | client → name key, the names it holds |
//! | `P:names` | hash | name key → member, the names in use cluster-wide |
//! | `P:reclaim` | string | exists while nodes re-claim names after Redis lost its data |
//! | `P:nseq` | hash | node → last operation number a script applied (resends) |
//! | `P:log` | stream | every room event, in one order (see `entry.rs`) |
//!
//! A member is `<node>:<client>`.
//!
//! A registered room (one with an `owner`) is not deleted when its last member
//! leaves: only its owner gives it up (`DELETE_ROOM`). Its chats are also pushed to
//! its `history` list (`CHAT_KEPT`), trimmed to the history limit, which is what a
//! node starting later (or after every node stopped) reads back. Accounts and tokens
//! change through their own scripts (`ACCOUNT_CREATE`, `PASSWORD`, `TOKEN_ADD`,
//! `TOKEN_DEL`), each with a log entry that tells every node.
//!
//! Only a node that is still registered may change anything: every script that
//! does first checks `P:nodes` and answers `{'fenced'}` otherwise. A script whose
//! operation number is not above the last one applied for its node is a resend (the
//! connection broke after Redis ran it) and answers `{'dup'}`, changing nothing.

/// Helpers every script starts with.
macro_rules! prelude {
    () => {
        r#"
local P, node, seq = ARGV[1], ARGV[2], tonumber(ARGV[3])
local S = '\31'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fenced()
  return redis.call('ZSCORE', P .. ':nodes', node) == false
end
local function dup()
  local last = redis.call('HGET', P .. ':nseq', node)
  return last and tonumber(last) >= seq
end
local function done()
  redis.call('HSET', P .. ':nseq', node, ARGV[3])
end
local function log(kind, writer, q, mnode, client, room, rest)
  redis.call('XADD', P .. ':log', '*', 'e',
    kind .. S .. writer .. S .. q .. S .. mnode .. S .. client .. S .. room .. S .. rest)
end
local function add_member(room, mnode, client, name, who)
  local rk = P .. ':room:' .. room
  local m = mnode .. ':' .. client
  local j = redis.call('HINCRBY', rk, 'jseq', 1)
  redis.call('ZADD', rk .. ':order', j, m)
  redis.call('HSET', rk .. ':names', m, name)
  redis.call('HSET', rk .. ':who', m, who)
  redis.call('HSET', P .. ':node:' .. mnode, client, room)
end
local function remove_member(room, mnode, client)
  local rk = P .. ':room:' .. room
  local m = mnode .. ':' .. client
  if redis.call('HDEL', rk .. ':names', m) == 0 then
    return false
  end
  redis.call('ZREM', rk .. ':order', m)
  redis.call('HDEL', rk .. ':who', m)
  local nk = P .. ':node:' .. mnode
  if redis.call('HGET', nk, client) == tostring(room) then
    redis.call('HDEL', nk, client)
  end
  if redis.call('HLEN', rk .. ':names') == 0 and redis.call('HEXISTS', rk, 'owner') == 0 then
    redis.call('DEL', rk, rk .. ':order', rk .. ':names', rk .. ':history', rk .. ':who')
    redis.call('ZREM', P .. ':rooms', room)
  end
  return true
end
"#
    };
}

/// `create`: ARGV 4 client, 5 name, 6 title, 7 the highest id allowed, 8 the
/// creator's account key (the room is registered to it) or empty for a guest.
pub(crate) const CREATE: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if dup() then return {'dup'} end
local last = tonumber(redis.call('GET', P .. ':room_seq') or '0')
if last >= tonumber(ARGV[7]) then return {'exhausted'} end
local room = redis.call('INCR', P .. ':room_seq')
redis.call('HSET', P .. ':room:' .. room, 'title', ARGV[6])
redis.call('ZADD', P .. ':rooms', room, room)
add_member(room, node, ARGV[4], ARGV[5], ARGV[8] .. S)
done()
if ARGV[8] == '' then
  log('n', node, ARGV[3], node, ARGV[4], room, ARGV[5] .. S .. ARGV[6])
else
  redis.call('HSET', P .. ':room:' .. room, 'owner', ARGV[8])
  log('N', node, ARGV[3], node, ARGV[4], room, ARGV[5] .. S .. ARGV[8] .. S .. ARGV[6])
end
return {'ok', room}
"#
);

/// `delete` a registered room (its owner gives it up): ARGV 4 room, 5 the asking
/// account's key. An empty room goes with its history; one with members is an
/// ordinary room from then on. Answers `{'ok'}` (the `d` entry tells the outcome),
/// `{'nosuch'}` or `{'notowner'}`.
pub(crate) const DELETE_ROOM: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if dup() then return {'dup'} end
local room = ARGV[4]
local rk = P .. ':room:' .. room
if redis.call('EXISTS', rk) == 0 then return {'nosuch'} end
if redis.call('HGET', rk, 'owner') ~= ARGV[5] then return {'notowner'} end
redis.call('HDEL', rk, 'owner', 'moderation', 'mod_ms', 'mod_seq')
redis.call('DEL', rk .. ':history')
local deleted = '0'
if redis.call('HLEN', rk .. ':names') == 0 then
  redis.call('DEL', rk, rk .. ':order', rk .. ':names', rk .. ':who')
  redis.call('ZREM', P .. ':rooms', room)
  deleted = '1'
end
done()
log('d', node, ARGV[3], node, 0, room, deleted)
return {'ok'}
"#
);

/// `moderation` saved: ARGV 4 room, 5 its owner's key, 6 and 7 the log entry the
/// state is true at (ms, sequence), 8 the state (`Moderation::to_text`). Written by
/// the node whose request the entry was, after every node applied it the same way
/// (`Room::moderate`); a save for an earlier entry than the one saved is stale and
/// ignored, as is one for a room no longer registered.
pub(crate) const SAVE_MODERATION: &str = concat!(
    prelude!(),
    r#"
local rk = P .. ':room:' .. ARGV[4]
if redis.call('HEXISTS', rk, 'owner') == 0 then return {'ok'} end
local ms = tonumber(redis.call('HGET', rk, 'mod_ms') or '0')
local sq = tonumber(redis.call('HGET', rk, 'mod_seq') or '0')
local nms, nsq = tonumber(ARGV[6]), tonumber(ARGV[7])
if nms < ms or (nms == ms and nsq <= sq) then return {'ok'} end
redis.call('HSET', rk, 'owner', ARGV[5], 'moderation', ARGV[8], 'mod_ms', ARGV[6], 'mod_seq', ARGV[7])
return {'ok'}
"#
);

/// A chat in a registered room: ARGV 4 the entry (`entry::chat`), 5 room, 6 client,
/// 7 text, 8 how many chats the room keeps. Appended to the log like any chat and,
/// if the room is still registered and the sender still in it, to its history.
pub(crate) const CHAT_KEPT: &str = concat!(
    prelude!(),
    r#"
local id = redis.call('XADD', P .. ':log', '*', 'e', ARGV[4])
local rk = P .. ':room:' .. ARGV[5]
if redis.call('HEXISTS', rk, 'owner') == 1 then
  local name = redis.call('HGET', rk .. ':names', node .. ':' .. ARGV[6])
  if name then
    redis.call('RPUSH', rk .. ':history', id .. S .. name .. S .. ARGV[7])
    redis.call('LTRIM', rk .. ':history', -tonumber(ARGV[8]), -1)
  end
end
return {'ok'}
"#
);

/// A `direct` message: ARGV 4 client, 5 the recipient's name key, 6 the sender's
/// name key, 7 text, 8 the sender's name. Answers `{'nomember'}` if nobody holds the
/// name, `{'ignored'}` if its holder ignores the sender's; else appends an `m` entry
/// for the holder (its node delivers it) and answers `{'ok'}`.
pub(crate) const DIRECT: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if dup() then return {'dup'} end
local holder = redis.call('HGET', P .. ':names', ARGV[5])
if not holder then return {'nomember'} end
if redis.call('SISMEMBER', P .. ':ignore:' .. holder, ARGV[6]) == 1 then return {'ignored'} end
local hnode, hclient = string.match(holder, '^(%d+):(%d+)$')
if not hnode then return {'nomember'} end
done()
log('m', node, ARGV[3], hnode, hclient, 0, ARGV[8] .. S .. ARGV[7])
return {'ok'}
"#
);

/// `ignore`: ARGV 4 client, 5 a name key, 6 `1` to ignore it, `0` not to, `clear`
/// to drop the client's whole set (it is gone). Answers `{'ok', 1}` if that changed
/// anything, `{'ok', 0}` if not, `{'toomany'}` past 100 names.
pub(crate) const IGNORE: &str = concat!(
    prelude!(),
    r#"
local key = P .. ':ignore:' .. node .. ':' .. ARGV[4]
local clients = P .. ':node:' .. node .. ':ignoring'
if ARGV[6] == 'clear' then
  redis.call('DEL', key)
  redis.call('SREM', clients, ARGV[4])
  return {'ok', 1}
end
if fenced() then return {'fenced'} end
if ARGV[6] == '0' then
  local changed = redis.call('SREM', key, ARGV[5])
  if redis.call('SCARD', key) == 0 then redis.call('SREM', clients, ARGV[4]) end
  return {'ok', changed}
end
if redis.call('SISMEMBER', key, ARGV[5]) == 1 then return {'ok', 0} end
if redis.call('SCARD', key) >= 100 then return {'toomany'} end
redis.call('SADD', key, ARGV[5])
redis.call('SADD', clients, ARGV[4])
return {'ok', 1}
"#
);

/// `account` registration: ARGV 4 key, 5 name, 6 password hash, 7 created ms.
/// Answers `{'ok'}`, or `{'taken'}` if the key has another account (the same one
/// again is a resend after a lost reply, and `ok`).
pub(crate) const ACCOUNT_CREATE: &str = concat!(
    prelude!(),
    r#"
local value = ARGV[5] .. S .. ARGV[6] .. S .. ARGV[7]
local held = redis.call('HGET', P .. ':accounts', ARGV[4])
if held then
  if held == value then return {'ok'} end
  return {'taken'}
end
redis.call('HSET', P .. ':accounts', ARGV[4], value)
log('a', node, 0, 0, 0, 0, ARGV[4] .. S .. value)
return {'ok'}
"#
);

/// A new `password`: ARGV 4 key, 5 password hash; every token of the account ends.
/// Answers `{'ok'}` or `{'nosuch'}`.
pub(crate) const PASSWORD: &str = concat!(
    prelude!(),
    r#"
local held = redis.call('HGET', P .. ':accounts', ARGV[4])
if not held then return {'nosuch'} end
local name, _, created = string.match(held, '^([^\31]*)\31([^\31]*)\31(.*)$')
redis.call('HSET', P .. ':accounts', ARGV[4], name .. S .. ARGV[5] .. S .. created)
local tk = P .. ':account:' .. ARGV[4] .. ':tokens'
for _, hash in ipairs(redis.call('SMEMBERS', tk)) do
  redis.call('HDEL', P .. ':tokens', hash)
end
redis.call('DEL', tk)
log('p', node, 0, 0, 0, 0, ARGV[4] .. S .. ARGV[5])
return {'ok'}
"#
);

/// A new login token: ARGV 4 its hash, 5 the account's key, 6 when it expires (ms).
/// Kept only while the account exists.
pub(crate) const TOKEN_ADD: &str = concat!(
    prelude!(),
    r#"
if redis.call('HEXISTS', P .. ':accounts', ARGV[5]) == 0 then return {'nosuch'} end
redis.call('HSET', P .. ':tokens', ARGV[4], ARGV[5] .. S .. ARGV[6])
redis.call('SADD', P .. ':account:' .. ARGV[5] .. ':tokens', ARGV[4])
log('t', node, 0, 0, 0, 0, ARGV[4] .. S .. ARGV[5] .. S .. ARGV[6])
return {'ok'}
"#
);

/// A login token ends: ARGV 4 its hash.
pub(crate) const TOKEN_DEL: &str = concat!(
    prelude!(),
    r#"
local held = redis.call('HGET', P .. ':tokens', ARGV[4])
if not held then return {'ok'} end
local key = string.match(held, '^([^\31]*)\31')
redis.call('HDEL', P .. ':tokens', ARGV[4])
if key then redis.call('SREM', P .. ':account:' .. key .. ':tokens', ARGV[4]) end
log('u', node, 0, 0, 0, 0, ARGV[4])
return {'ok'}
"#
);

/// `join`: ARGV 4 client, 5 room, 6 name, 7 the account key it is logged in as (or
/// empty), 8 its address (or empty).
pub(crate) const JOIN: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if dup() then return {'dup'} end
if redis.call('EXISTS', P .. ':room:' .. ARGV[5]) == 0 then return {'nosuch'} end
add_member(ARGV[5], node, ARGV[4], ARGV[6], ARGV[7] .. S .. ARGV[8])
done()
log('j', node, ARGV[3], node, ARGV[4], ARGV[5], ARGV[6] .. S .. ARGV[7] .. S .. ARGV[8])
return {'ok'}
"#
);

/// `leave`: ARGV 4 client, 5 room, 6 `1` if the member gets its own notice.
pub(crate) const LEAVE: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if dup() then return {'dup'} end
if not remove_member(ARGV[5], node, ARGV[4]) then return {'nosuch'} end
done()
log('l', node, ARGV[3], node, ARGV[4], ARGV[5], ARGV[6])
return {'ok'}
"#
);

/// `rename` inside a room: ARGV 4 client, 5 room, 6 the new name.
pub(crate) const RENAME: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if dup() then return {'dup'} end
local names = P .. ':room:' .. ARGV[5] .. ':names'
local m = node .. ':' .. ARGV[4]
if redis.call('HEXISTS', names, m) == 0 then return {'nosuch'} end
redis.call('HSET', names, m, ARGV[6])
done()
log('r', node, ARGV[3], node, ARGV[4], ARGV[5], ARGV[6])
return {'ok'}
"#
);

/// `claim` a name key: ARGV 4 client, 5 key, 6 `1` for a node re-claiming what its
/// client held before a reset, 7 the account key the client is logged in as (or
/// empty). Releases the key the client held. While `P:reclaim` exists (Redis lost
/// its data and the nodes are re-claiming), a new claim answers `{'busy'}`: the
/// names held before go first. A registered name is `{'registered'}` for anyone not
/// logged in as it, even before this node heard of the registration.
pub(crate) const CLAIM: &str = concat!(
    prelude!(),
    r#"
if fenced() then return {'fenced'} end
if ARGV[6] ~= '1' and redis.call('EXISTS', P .. ':reclaim') == 1 then return {'busy'} end
if ARGV[6] ~= '1' and ARGV[7] ~= ARGV[5] and redis.call('HEXISTS', P .. ':accounts', ARGV[5]) == 1 then
  return {'registered'}
end
local m = node .. ':' .. ARGV[4]
local holder = redis.call('HGET', P .. ':names', ARGV[5])
if holder and holder ~= m then return {'taken'} end
local nk = P .. ':node:' .. node .. ':names'
local old = redis.call('HGET', nk, ARGV[4])
if old and old ~= ARGV[5] and redis.call('HGET', P .. ':names', old) == m then
  redis.call('HDEL', P .. ':names', old)
end
redis.call('HSET', P .. ':names', ARGV[5], m)
redis.call('HSET', nk, ARGV[4], ARGV[5])
return {'ok'}
"#
);

/// `release` the name a client holds: ARGV 4 client.
pub(crate) const RELEASE: &str = concat!(
    prelude!(),
    r#"
local m = node .. ':' .. ARGV[4]
local nk = P .. ':node:' .. node .. ':names'
local old = redis.call('HGET', nk, ARGV[4])
if old then
  if redis.call('HGET', P .. ':names', old) == m then
    redis.call('HDEL', P .. ':names', old)
  end
  redis.call('HDEL', nk, ARGV[4])
end
return {'ok'}
"#
);

/// `register` a node: ARGV 4 its time to live (ms), 5 the lowest `room_seq` it
/// accepts (ids never go down, even if Redis lost them), 6 an epoch to set if there
/// is none, 7 the epoch the node knew (empty for a node that knew none). A node that
/// knew another epoch comes back from Redis losing its data, with names to re-claim:
/// it opens (or extends) the re-claim window, one time to live long, in which new
/// claims are refused — every node that was alive beats, and so re-claims, within it.
/// Answers the epoch.
pub(crate) const REGISTER: &str = concat!(
    prelude!(),
    r#"
redis.call('SET', P .. ':epoch', ARGV[6], 'NX')
if ARGV[7] ~= '' and ARGV[7] ~= redis.call('GET', P .. ':epoch') then
  redis.call('SET', P .. ':reclaim', '1', 'PX', ARGV[4])
end
local current = tonumber(redis.call('GET', P .. ':room_seq') or '0')
if current < tonumber(ARGV[5]) then redis.call('SET', P .. ':room_seq', ARGV[5]) end
redis.call('ZADD', P .. ':nodes', string.format('%.0f', now_ms() + tonumber(ARGV[4])), node)
return {'ok', redis.call('GET', P .. ':epoch')}
"#
);

/// `beat`: renew the node's deadline (ARGV 4, time to live in ms) and trim the log to
/// ARGV 5 ms. Answers `{'ok', epoch}`, `{'fenced', epoch}` (the node was declared
/// dead) or `{'lost'}` (no epoch: Redis lost its data).
pub(crate) const BEAT: &str = concat!(
    prelude!(),
    r#"
local epoch = redis.call('GET', P .. ':epoch')
if not epoch then return {'lost'} end
if fenced() then return {'fenced', epoch} end
local now = now_ms()
redis.call('ZADD', P .. ':nodes', 'XX', string.format('%.0f', now + tonumber(ARGV[4])), node)
redis.call('XTRIM', P .. ':log', 'MINID', '~', string.format('%.0f', now - tonumber(ARGV[5])) .. '-0')
return {'ok', epoch}
"#
);

/// `reap`: remove up to ARGV 5 members of a dead node — ARGV 4 names it, or is empty
/// for "one whose deadline passed" — each with a leave notice written by the caller.
/// A node chosen is unregistered first (so it is fenced from then on). When it has
/// no members left, its names are released, its keys deleted and a `node gone`
/// entry written. Answers `{removed, node}` (`{0}` if there was nothing to do);
/// idempotent, so any node may run it, any number of times.
pub(crate) const REAP: &str = concat!(
    prelude!(),
    r#"
local target = ARGV[4]
if target == '' then
  target = redis.call('SRANDMEMBER', P .. ':reaping')
  if not target then
    local expired = redis.call('ZRANGEBYSCORE', P .. ':nodes', '-inf', string.format('%.0f', now_ms()), 'LIMIT', 0, 1)
    if #expired == 0 then return {0} end
    target = expired[1]
  end
end
redis.call('ZREM', P .. ':nodes', target)
redis.call('SADD', P .. ':reaping', target)
local nk = P .. ':node:' .. target
local scan = redis.call('HSCAN', nk, 0, 'COUNT', ARGV[5])
local kv = scan[2]
local removed = 0
for i = 1, #kv, 2 do
  local client, room = kv[i], kv[i + 1]
  if remove_member(room, target, client) then
    log('l', node, 0, target, client, room, '0')
  end
  redis.call('HDEL', nk, client)
  removed = removed + 1
end
if removed > 0 then return {removed, target} end
local names = redis.call('HGETALL', nk .. ':names')
for i = 1, #names, 2 do
  if redis.call('HGET', P .. ':names', names[i + 1]) == target .. ':' .. names[i] then
    redis.call('HDEL', P .. ':names', names[i + 1])
  end
end
for _, client in ipairs(redis.call('SMEMBERS', nk .. ':ignoring')) do
  redis.call('DEL', P .. ':ignore:' .. target .. ':' .. client)
end
redis.call('DEL', nk, nk .. ':names', nk .. ':ignoring')
redis.call('HDEL', P .. ':nseq', target)
redis.call('SREM', P .. ':reaping', target)
log('x', node, 0, target, 0, 0, '')
return {0, target}
"#
);

/// `snapshot`: everything a node needs to start applying the log, atomically with
/// the log position it is true at: `{epoch, room_seq, last entry id, then per room:
/// id, title, owner (empty for a guest room), moderation (empty for none), member
/// count, member, name and who (account ␟ address) triples in join order, history
/// count, history lines}`. Accounts and tokens are read
/// after it (`accounts.rs`): what changed in between is in the log after this
/// position, applied again, idempotently.
pub(crate) const SNAPSHOT: &str = concat!(
    prelude!(),
    r#"
local out = {redis.call('GET', P .. ':epoch') or '', redis.call('GET', P .. ':room_seq') or '0'}
local last = redis.call('XREVRANGE', P .. ':log', '+', '-', 'COUNT', 1)
if #last > 0 then out[3] = last[1][1] else out[3] = '0-0' end
for _, id in ipairs(redis.call('ZRANGE', P .. ':rooms', 0, -1)) do
  local rk = P .. ':room:' .. id
  local members = redis.call('ZRANGE', rk .. ':order', 0, -1)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', rk, 'title') or ''
  out[#out + 1] = redis.call('HGET', rk, 'owner') or ''
  out[#out + 1] = redis.call('HGET', rk, 'moderation') or ''
  out[#out + 1] = #members
  for _, m in ipairs(members) do
    out[#out + 1] = m
    out[#out + 1] = redis.call('HGET', rk .. ':names', m) or ''
    out[#out + 1] = redis.call('HGET', rk .. ':who', m) or ''
  end
  local lines = redis.call('LRANGE', rk .. ':history', 0, -1)
  out[#out + 1] = #lines
  for _, line in ipairs(lines) do
    out[#out + 1] = line
  end
end
return out
"#
);
