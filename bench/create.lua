-- wrk script: POST /api/data/v9.2/accounts with a new account per request (expects 204 and an
-- OData-EntityId header; the server acknowledges only after the row is durable).
--   BENCH_TOKEN  bearer token; see wrk_common.lua for the rest
-- accountnumber values are "C-<run>-<thread>-<n>", so they never collide with the seeded
-- "A-..." values used by query.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_common.lua")

local path
local headers
local n = 0
local run

function init(args)
  path = (os.getenv("BENCH_API_PREFIX") or "/api/data/v9.2") .. "/accounts"
  headers = bench.headers({ ["Content-Type"] = "application/json; charset=utf-8" })
  run = os.getenv("BENCH_RUN_ID") or tostring(os.time())
end

function request()
  n = n + 1
  local t = tid or 1
  local body = string.format(
    '{"name":"Bench Create %d-%d","accountnumber":"C-%s-%d-%d","numberofemployees":%d,' ..
    '"revenue":%d.5,"telephone1":"+1-555-%07d"}',
    t, n, run, t, n, n % 5000, 1000 + n % 100000, (t * 1000003 + n) % 10000000)
  return wrk.format("POST", path, headers, body)
end
