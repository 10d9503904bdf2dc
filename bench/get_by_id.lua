-- wrk script: GET /api/data/v9.2/accounts(<id>), cycling through the seeded ids.
--   BENCH_IDS_FILE   file with one account GUID per line (written by bench/seed.mjs)
--   BENCH_TOKEN      bearer token; see wrk_common.lua for the rest
-- Requests are pre-formatted in init() so the Lua side costs one table index per request.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_common.lua")

local requests = {}
local i = 0

function init(args)
  local ids = bench.read_lines("BENCH_IDS_FILE")
  local prefix = os.getenv("BENCH_API_PREFIX") or "/api/data/v9.2"
  local headers = bench.headers()
  for n = 1, #ids do
    requests[n] = wrk.format("GET", prefix .. "/accounts(" .. ids[n] .. ")", headers)
  end
  -- Spread threads over the list so they do not walk it in lock step.
  i = ((tid or 1) - 1) * 7919 % #requests
end

function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
