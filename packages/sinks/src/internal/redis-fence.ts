/**
 * Applies one partition's slice of a batch atomically with its fence.
 *
 * KEYS[1] is the fence (last applied sequence of this job and partition);
 * KEYS[2..] the keys the commands touch. ARGV[1] is the TTL in ms (0 = none),
 * then per record: sequence, command count, and per command: name, key index
 * (0 = no key, the first argument is used as is, e.g. a PUBLISH channel),
 * argument count, arguments.
 *
 * A record is applied only when its sequence is greater than the stored
 * fence, so a replayed batch — or the already applied head of a partly
 * applied one — changes nothing. Command errors are caught per record
 * (`pcall`): the record is reported back as rejected and the others still
 * apply; the fence then advances past all of them, so the result is the same
 * however often the batch is sent. Returns `{applied, skipped, i1, msg1, …}`
 * with the 0-based record positions that failed.
 */
export const FENCE_SCRIPT = `
local fence = tonumber(redis.call('GET', KEYS[1]) or '-1')
local ttl = tonumber(ARGV[1])
local maxSeq, maxSeqText = fence, nil
local applied, skipped = 0, 0
local failures = {}
local touched = {}
local i = 2
local record = 0
while i <= #ARGV do
  local seqText = ARGV[i]
  local seq = tonumber(seqText)
  local ncmd = tonumber(ARGV[i + 1])
  i = i + 2
  local apply = seq > fence
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
    if seq > maxSeq then maxSeq, maxSeqText = seq, seqText end
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
