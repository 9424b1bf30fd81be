/**
 * Applies one partition's slice of a batch atomically with its fence.
 *
 * KEYS[1] is the fence (last applied sequence of this job and partition);
 * KEYS[2..] declare the keys the commands touch (Cluster routing; all share
 * the partition's slot with hash tags). ARGV[1] is the TTL of touched keys
 * in ms (0 = none), ARGV[2] the TTL of identity markers in ms, ARGV[3] a JSON
 * array of records, each `[kind, token, [command, key, args…], …]` with kind
 * `s` (token = sequence) or `i` (token = identity marker key).
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
local records = cjson.decode(ARGV[3])
local maxSeq, maxSeqText = fence, nil
local applied, skipped = 0, 0
local failures = {}
local touched = {}
for r = 1, #records do
  local rec = records[r]
  local seq = nil
  local apply
  if rec[1] == 's' then
    seq = tonumber(rec[2])
    apply = seq > fence
  else
    apply = redis.call('SET', rec[2], '1', 'NX', 'PX', markerTtl) ~= false
  end
  if apply then
    local failed = nil
    for c = 3, #rec do
      local cmd = rec[c]
      local res = redis.pcall(unpack(cmd))
      if type(res) == 'table' and res.err then
        failed = res.err
        break
      end
      if ttl > 0 and cmd[1] ~= 'PUBLISH' then touched[cmd[2]] = true end
    end
    applied = applied + 1
    if failed then
      failures[#failures + 1] = r - 1
      failures[#failures + 1] = failed
    end
    if seq and seq > maxSeq then maxSeq, maxSeqText = seq, rec[2] end
  else
    skipped = skipped + 1
  end
end
if ttl > 0 then
  for key in pairs(touched) do redis.call('PEXPIRE', key, ttl) end
end
if maxSeqText then redis.call('SET', KEYS[1], maxSeqText) end
local out = { applied, skipped }
for _, v in ipairs(failures) do out[#out + 1] = v end
return out
`;
