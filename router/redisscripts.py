"""The Lua scripts of the Redis queue and its dead letters, each one atomic round trip.

Every script names its keys and arguments above it; the queue
(:mod:`router.redisqueue`) and ``router dlq`` (:mod:`router.redisdead`) run
them through :meth:`RedisLink.eval <router.redisconn.RedisLink.eval>`.
"""

from __future__ import annotations

__all__ = ["ACK", "CHUNK", "DEAD", "HEAD", "PUT", "REPLAY", "REQUEUE", "text"]

#: Entries per script call or command when acknowledging, claiming or replaying.
CHUNK = 500


def text(value: bytes | str) -> str:
    """A reply's bytes as a string."""
    return value.decode() if isinstance(value, bytes) else value


# Several puts in one call (concurrent requests' events: a group commit).
# KEYS: stream, bytes, the group's token, then a dedup key per event (only with a window).
# ARGV: window ms ('' for none), then per put: its event count, its enqueued_at, its
# event ids joined by newlines and its payloads joined by newlines (JSON has no raw
# newline: one argument each, not one per event, which the client encoded one by
# one). Returns {bytes stored, events stored per put...}; the token keeps the group's
# total for an hour, for a put whose reply is lost.
PUT = """
local window = tonumber(ARGV[1])
local reply, total, size = {0}, 0, 0
local i, key = 2, 4
while i <= #ARGV do
  local n, now, ids, payloads = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  local stored, at, from = 0, 1, 1
  for _ = 1, n do
    local id_end = string.find(ids, '\\n', at, true) or (#ids + 1)
    local p_end = string.find(payloads, '\\n', from, true) or (#payloads + 1)
    local event_id, payload = string.sub(ids, at, id_end - 1), string.sub(payloads, from, p_end - 1)
    at, from = id_end + 1, p_end + 1
    if not window or redis.call('SET', KEYS[key], '1', 'NX', 'PX', window) then
      redis.call('XADD', KEYS[1], '*', 'e', event_id, 'p', payload, 't', now)
      stored = stored + 1
      size = size + #payload
    end
    key = key + 1
  end
  reply[#reply + 1] = stored
  total = total + stored
end
if size > 0 then redis.call('INCRBY', KEYS[2], size) end
redis.call('SET', KEYS[3], total, 'PX', 3600000)
reply[1] = size
return reply
"""

# KEYS: stream. The first entry's id and enqueue time ('' if it has none), {} if none:
# only those, not its payload, which may be megabytes.
HEAD = """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not first then return {} end
local flat = first[2]
for j = 1, #flat, 2 do
  if flat[j] == 't' then return {first[1], flat[j + 1]} end
end
return {first[1], ''}
"""

# KEYS: stream, bytes. ARGV: group, the entry ids joined by spaces, their payload
# sizes joined by spaces (two arguments, not two per entry).
ACK = """
local ids, sizes = ARGV[2], ARGV[3]
local deleted, size, at, from = 0, 0, 1, 1
while at <= #ids do
  local id_end = string.find(ids, ' ', at, true) or (#ids + 1)
  local s_end = string.find(sizes, ' ', from, true) or (#sizes + 1)
  local id = string.sub(ids, at, id_end - 1)
  local n = tonumber(string.sub(sizes, from, s_end - 1))
  at, from = id_end + 1, s_end + 1
  redis.call('XACK', KEYS[1], ARGV[1], id)
  if redis.call('XDEL', KEYS[1], id) == 1 then
    deleted = deleted + 1
    size = size + n
  end
end
if size > 0 then redis.call('DECRBY', KEYS[2], size) end
return {deleted, size}
"""

# KEYS: stream, bytes, dead. ARGV: group, max dead letters ('' for no bound), reason,
# attempts, status, response, dead_at, then id ('' if never queued), event_id, payload,
# enqueued_at per entry. A queued entry is dead-lettered only if it is still in the
# stream: at most once, even when the script is run again after a lost reply or
# another daemon claimed the entry and finished it first.
DEAD = """
local maxlen = ARGV[2]
local moved, size = 0, 0
for i = 8, #ARGV, 4 do
  local queued = ARGV[i] ~= ''
  local present = true
  if queued then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    present = redis.call('XDEL', KEYS[1], ARGV[i]) == 1
    if present then size = size + #ARGV[i + 2] end
  end
  if present then
    local fields = {'e', ARGV[i + 1], 'p', ARGV[i + 2], 't', ARGV[i + 3], 'd', ARGV[7],
                    'reason', ARGV[3], 'attempts', ARGV[4]}
    if ARGV[5] ~= '' then table.insert(fields, 'status'); table.insert(fields, ARGV[5]) end
    if ARGV[6] ~= '' then table.insert(fields, 'response'); table.insert(fields, ARGV[6]) end
    if maxlen ~= '' then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '0-*', unpack(fields))
    else
      redis.call('XADD', KEYS[3], '0-*', unpack(fields))
    end
    moved = moved + 1
  end
end
if size > 0 then redis.call('DECRBY', KEYS[2], size) end
return {moved, size}
"""

# KEYS: stream. ARGV: group, then ids: copy each entry to the stream's end and drop the
# original, so any consumer may take it at once (a daemon stopping gives back what it held).
# The copy drops the replay mark 'r': the daemon that read it has counted the replay.
REQUEUE = """
local moved = 0
for i = 2, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if #found > 0 then
    local flat, fields = found[1][2], {}
    for j = 1, #flat, 2 do
      if flat[j] ~= 'r' then
        table.insert(fields, flat[j]); table.insert(fields, flat[j + 1])
      end
    end
    redis.call('XADD', KEYS[1], '*', unpack(fields))
    moved = moved + 1
  end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return moved
"""

# KEYS: stream, bytes, dead. ARGV: dead letter ids: back into the stream, marked replayed.
REPLAY = """
local moved, size = 0, 0
for i = 1, #ARGV do
  local found = redis.call('XRANGE', KEYS[3], ARGV[i], ARGV[i])
  if #found > 0 then
    local f = {}
    local flat = found[1][2]
    for j = 1, #flat, 2 do f[flat[j]] = flat[j + 1] end
    redis.call('XADD', KEYS[1], '*', 'e', f['e'], 'p', f['p'], 't', f['t'], 'r', '1')
    redis.call('XDEL', KEYS[3], ARGV[i])
    moved = moved + 1
    size = size + #f['p']
  end
end
if size > 0 then redis.call('INCRBY', KEYS[2], size) end
return moved
"""
