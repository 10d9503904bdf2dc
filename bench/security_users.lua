-- wrk script for bench/security.sh: GET /api/data/v9.2/accounts(<id>) as many users in turn, each
-- request with "MSCRMCallerID: <user>" (the token must be the admin's) and an account of that
-- user's business unit.
--   BENCH_PAIRS_FILE   lines "<systemuserid> <accountid>" (written by security.mjs setup)
--   BENCH_PAIRS_LIMIT  use only the first N lines (0 or unset = all)
--   BENCH_TOKEN: see wrk_common.lua
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_common.lua")

local requests = {}
local i = 0

function init(args)
  local lines = bench.read_lines("BENCH_PAIRS_FILE")
  local limit = tonumber(os.getenv("BENCH_PAIRS_LIMIT") or "0") or 0
  local prefix = os.getenv("BENCH_API_PREFIX") or "/api/data/v9.2"
  for n = 1, #lines do
    if limit > 0 and n > limit then break end
    local user, id = lines[n]:match("^(%S+)%s+(%S+)$")
    if user then
      requests[#requests + 1] = wrk.format("GET", prefix .. "/accounts(" .. id .. ")",
                                           bench.headers({ ["MSCRMCallerID"] = user }))
    end
  end
  if #requests == 0 then error("BENCH_PAIRS_FILE has no '<user> <account>' line") end
  i = ((tid or 1) - 1) * 7919 % #requests
end

function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
