"""The behaviour history in Redis (LLMAAS_REDIS_URL), so several filter replicas see one.

The same rules as the in-process `BehaviorTracker` (mesh.filter.behavior), whose settings
and reason logic this reuses: per (tenant, user) the last `history` prompts (tail, own
rules, time) for fragmentation across requests, the identical-prompt run for repetition
(the 30th in a row is blocked), and one tenant-wide history checked as well while the
tenant brings more than `fresh_user_limit` new users a window. One Lua script records a
prompt in both histories and returns what came before, atomically, so two replicas
checking one sender's fragments at once still see each other's.

Memory is bounded by time instead of LRU counts: a history expires `max_age_s` after its
last prompt, the run and "seen" marker of a user a day after. A user unseen for a day is
a fresh user again.

Redis unreachable: the check raises 503 `shared_state_unavailable` (gRPC UNAVAILABLE with
that message); the router fails closed on it as on any filter outage. Service resumes as
soon as Redis answers; nothing to restart.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from operator import eq

from mesh.redis_state import connect, failing_closed, redis_prefix, redis_timeout, redis_url

from .behavior import MAX_USER_CHARS, NO_RULES, BehaviorTracker, Entry, cut_head, user_key
from .verdict import Reason

log = logging.getLogger("llmaas.filter")

# KEYS: user list, user meta, tenant list, tenant meta, fresh zset, flood key
# ARGV: now, max_age, entry json, digest, history, fresh limit, fresh window, list ttl ms, id
# -> {user run, tenant run, flooding, was flooding, user previous json, tenant previous json}
RECORD_LUA = """
local now, max_age, hist = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local function record(list, meta)
  local keep = {}
  for _, raw in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if now - cjson.decode(raw)[1] <= max_age then table.insert(keep, raw) end
  end
  local run = 0
  if #keep > 0 then run = tonumber(redis.call('HGET', meta, 'run') or '0') end
  if redis.call('HGET', meta, 'digest') == ARGV[4] then run = run + 1 else run = 1 end
  redis.call('DEL', list)
  for _, raw in ipairs(keep) do redis.call('RPUSH', list, raw) end
  redis.call('RPUSH', list, ARGV[3])
  redis.call('LTRIM', list, -hist, -1)
  redis.call('HSET', meta, 'digest', ARGV[4], 'run', run)
  redis.call('PEXPIRE', list, ARGV[8])
  redis.call('PEXPIRE', meta, 86400000) -- a day: then a fresh user again
  return keep, run
end
local flood_until = tonumber(redis.call('GET', KEYS[6]) or '-1')
local was_flooding = now < flood_until
if redis.call('EXISTS', KEYS[2]) == 0 then
  local window = tonumber(ARGV[7])
  redis.call('ZADD', KEYS[5], now, ARGV[9])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[5], math.ceil(window * 2000))
  if redis.call('ZCARD', KEYS[5]) > tonumber(ARGV[6]) then
    flood_until = now + window
    redis.call('SET', KEYS[6], tostring(flood_until), 'PX', math.ceil(window * 2000))
  end
end
local mine, urun = record(KEYS[1], KEYS[2])
local shared, trun = record(KEYS[3], KEYS[4])
local flooding = 0
if now < flood_until then flooding = 1 end
local was = 0
if was_flooding then was = 1 end
return {urun, trun, flooding, was, cjson.encode(mine), cjson.encode(shared)}
"""


def _part(key: str | bytes) -> str:
    return key.hex() if isinstance(key, bytes) else key


class RedisBehavior:
    """`BehaviorTracker.check` over Redis (async); `rules` holds the settings and reasons."""

    def __init__(
        self,
        client,
        prefix: str,
        rules: BehaviorTracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis, self._prefix, self._clock = client, prefix, clock
        self.rules = rules if rules is not None else BehaviorTracker()  # falsy when empty
        self._record = client.register_script(RECORD_LUA)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RedisBehavior | None:
        """None without LLMAAS_REDIS_URL (the in-process history)."""
        environ = os.environ if environ is None else environ
        url = redis_url(environ)
        if not url:
            return None
        return cls(connect(url, timeout_s=redis_timeout(environ)), redis_prefix(environ))

    def _keys(self, tenant: str, user: str) -> list[str]:
        base = f"{self._prefix}:{{flt:{_part(user_key(tenant))}}}"
        u = _part(user_key(user))
        # The entry lists are named for their format ("2": six fields, `Entry.short` last):
        # a filter of the five-field format fails on a longer entry, so while both run side
        # by side in a rolling upgrade each keeps its own lists (its fragments apart, for
        # `max_age_s` at most) instead of failing closed on the other's.
        return [
            f"{base}:u2:{u}",
            f"{base}:um:{u}",
            f"{base}:all2",
            f"{base}:allm",
            f"{base}:fresh",
            f"{base}:flood",
        ]

    async def check(
        self,
        tenant: str,
        user: str,
        prompt: str,
        own_rules: frozenset[str],
        digest: bytes,
        quoted: bool = False,
        head: str | None = None,
    ) -> list[Reason]:
        """Records `prompt` and returns behaviour reasons, as `BehaviorTracker.check`."""
        r = self.rules
        now = self._clock()
        head, short = cut_head(prompt if head is None else head, r.head_chars)
        entry_id = os.urandom(6).hex()
        quiet_tail, quiet_head = r.outside_ends(prompt, quoted)
        tail = prompt[-r.tail_chars :]
        entry = json.dumps([now, tail, sorted(own_rules), entry_id, quiet_tail, short])
        args = (
            repr(now),
            r.max_age_s,
            entry,
            digest.hex(),
            r.history,
            r.fresh_user_limit,
            r.fresh_window_s,
            int(r.max_age_s * 1000),
            entry_id,
        )
        async with failing_closed("the prompt filter's behaviour history"):
            urun, trun, flooding, was, mine, shared = await self._record(
                self._keys(tenant, user), args
            )
        # cjson writes an empty list as {}: `or []` reads both as no entries.
        mine_raw, shared_raw = json.loads(mine) or [], json.loads(shared) or []
        if flooding and not was:
            log.warning(
                "tenant %s brought more than %d new users in %.0f s: its prompts are also "
                "checked against one tenant-wide history (LLMAAS_FILTER_FRESH_USERS)",
                tenant[:MAX_USER_CHARS],
                r.fresh_user_limit,
                r.fresh_window_s,
            )
        reasons = r._reasons(
            _entries(mine_raw), int(urun), head, own_rules, quiet_head=quiet_head, short=short
        )
        if flooding:
            # The same prompts in both histories: the tenant-wide join is the one just checked.
            same = len(mine_raw) == len(shared_raw) and all(map(eq, mine_raw, shared_raw))
            seen = {x.rule for x in reasons}
            reasons += [
                x
                for x in r._reasons(
                    _entries(shared_raw),
                    int(trun),
                    head,
                    own_rules,
                    "tenant-wide ",
                    not same,
                    quiet_head,
                    short,
                )
                if x.rule not in seen
            ]
        return reasons

    async def close(self) -> None:
        await self._redis.aclose()


def _entries(raw: list[str]) -> list[Entry]:
    out = []
    for item in raw:
        # fields this version does not know (a later format's) are left unread
        at, tail, rules, _id, *later = json.loads(item)
        out.append(Entry(at, tail, frozenset(rules) or NO_RULES, *later[:2]))
    return out
