-- wrk script: single-record upsert of existing accounts, PATCH /api/data/v9.2/accounts(<key>) with
-- no If-Match (so PATCH is an upsert), cycling through the rows listed in a file:
--   BENCH_UPSERT_KEYS_FILE  one key segment per line: a GUID ("accounts(<guid>)") or an alternate key
--                           ("accountnumber='B-1'", giving "accounts(accountnumber='B-1')")
--   BENCH_TOKEN             bearer token; see wrk_common.lua for the rest
-- bench/bulk.sh runs it twice, once with ids and once with the alternate keys of the same rows, so
-- the two runs differ only in how the row is named. The body changes name and telephone1 (the same
-- attributes bulk.mjs's upserts change); the server answers 204 once the update is durable.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_common.lua")

local paths = {}
local headers
local i = 0
local n = 0
local run

function init(args)
  local keys = bench.read_lines("BENCH_UPSERT_KEYS_FILE")
  local prefix = os.getenv("BENCH_API_PREFIX") or "/api/data/v9.2"
  for k = 1, #keys do
    paths[k] = prefix .. "/accounts(" .. keys[k] .. ")"
  end
  headers = bench.headers({ ["Content-Type"] = "application/json; charset=utf-8" })
  run = os.getenv("BENCH_RUN_ID") or tostring(os.time())
  -- Spread threads over the list so they do not update the same rows in lock step.
  i = ((tid or 1) - 1) * 7919 % #paths
end

function request()
  i = i + 1
  if i > #paths then i = 1 end
  n = n + 1
  local t = tid or 1
  local body = string.format('{"name":"Bench Upsert %s-%d-%d","telephone1":"+1-555-%07d"}',
    run, t, n, (t * 1000003 + n) % 10000000)
  return wrk.format("PATCH", paths[i], headers, body)
end
