-- wrk script: filtered query on the indexed accountnumber column, cycling through values:
--   GET /api/data/v9.2/accounts?$select=name,accountnumber&$filter=accountnumber eq '<v>'&$top=50
--   BENCH_NUMBERS_FILE  file with one accountnumber value per line (written by bench/seed.mjs)
--   BENCH_TOKEN         bearer token; see wrk_common.lua for the rest
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_common.lua")

local requests = {}
local i = 0

function init(args)
  local values = bench.read_lines("BENCH_NUMBERS_FILE")
  local prefix = os.getenv("BENCH_API_PREFIX") or "/api/data/v9.2"
  local headers = bench.headers()
  for n = 1, #values do
    local v = values[n]:gsub("'", "''")  -- OData string literal escaping
    local path = prefix .. "/accounts?$select=name,accountnumber&$filter=" ..
      bench.urlencode("accountnumber eq '" .. v .. "'") .. "&$top=50"
    requests[n] = wrk.format("GET", path, headers)
  end
  i = ((tid or 1) - 1) * 101 % #requests
end

function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
