/**
 * Applies one partition's slice of a batch atomically with its fence.
 *
 * KEYS[1] is the fence (last applied sequence of this job and partition);
 * KEYS[2..] the keys the commands touch and the identity markers. ARGV[1] is
 * the TTL of touched keys in ms (0 = none), ARGV[2] the TTL of identity
 * markers in ms, then per record: `s <sequence>` or `i <marker key index>`,
 * the command count, and per command: name, key index (0 = no key, e.g. a
 * PUBLISH channel in the arguments), argument count, arguments.
 *
 * A sequence-fenced record is applied only when its sequence is above the
 * stored fence, so a replayed batch — or the already applied head of a partly
 * applied one — changes nothing; the fence advances in the same script. An
 * identity-fenced record (no sequence known) is applied only when its marker
 * key did not exist (`SET NX PX`). Command errors are caught per record
 * (`pcall`): the record is reported back and the others still apply; the
 * fence and markers advance anyway, so the outcome is the same however often
 * the batch is sent. Returns `{applied, skipped, i1, msg1, …}` with the
 * 0-based positions of failed records.
 */
export const FENCE_SCRIPT = `
local fence = tonumber(redis.call('GET', KEYS[1]) or '-1')
local ttl = tonumber(ARGV[1])
local markerTtl = ARGV[2]
local maxSeq, maxSeqText = fence, nil
local applied, skipped = 0, 0
local failures = {}
local touched = {}
local i = 3
local record = 0
while i <= #ARGV do
  local kind = ARGV[i]
  local token = ARGV[i + 1]
  local ncmd = tonumber(ARGV[i + 2])
  i = i + 3
  local seq = nil
  local apply
  if kind == 's' then
    seq = tonumber(token)
    apply = seq > fence
  else
    apply = redis.call('SET', KEYS[tonumber(token)], '1', 'NX', 'PX', markerTtl) ~= false
  end
  local failed = nil
  for _ = 1, ncmd do
    local name = ARGV[i]
    local kidx = tonumber(ARGV[i + 1])
    local nargs = tonumber(ARGV[i + 2])
    i = i + 3
    if apply and not failed then
      local res
      if kidx > 0 then
        res = redis.pcall(name, KEYS[kidx], unpack(ARGV, i, i + nargs - 1))
        touched[kidx] = true
      else
        res = redis.pcall(name, unpack(ARGV, i, i + nargs - 1))
      end
      if type(res) == 'table' and res.err then failed = res.err end
    end
    i = i + nargs
  end
  if apply then
    applied = applied + 1
    if failed then
      failures[#failures + 1] = record
      failures[#failures + 1] = failed
    end
    if seq and seq > maxSeq then maxSeq, maxSeqText = seq, token end
  else
    skipped = skipped + 1
  end
  record = record + 1
end
if ttl > 0 then
  for kidx in pairs(touched) do redis.call('PEXPIRE', KEYS[kidx], ttl) end
end
if maxSeqText then redis.call('SET', KEYS[1], maxSeqText) end
local out = { applied, skipped }
for _, v in ipairs(failures) do out[#out + 1] = v end
return out
`;
