-- wrk script for bench/security.sh: a list without a selective filter, the case where the row
-- condition decides which rows are scanned:
--   GET /api/data/v9.2/accounts?$select=name,accountnumber&$top=50
--   BENCH_TOKEN, BENCH_CALLER_ID: see wrk_common.lua
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_common.lua")

local req

function init(args)
  local prefix = os.getenv("BENCH_API_PREFIX") or "/api/data/v9.2"
  req = wrk.format("GET", prefix .. "/accounts?$select=name,accountnumber&$top=50", bench.headers())
end

function request()
  return req
end
