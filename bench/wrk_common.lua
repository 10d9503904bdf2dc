-- Shared by get_by_id.lua, query.lua and create.lua (loaded with dofile from the same directory).
--
-- Environment (read in every wrk thread):
--   BENCH_TOKEN        bearer token sent as "Authorization: Bearer ..." (required by the server)
--   BENCH_CALLER_ID    if set, sent as "MSCRMCallerID: ..." (the token's user acts as that user)
--   BENCH_RESULT_FILE  if set, done() appends one machine-readable line there:
--                      rps=<n> requests=<n> duration_s=<n> p50_ms=<n> p90_ms=<n> p99_ms=<n>
--                      max_ms=<n> non2xx=<n> connect=<n> read=<n> write=<n> timeout=<n>
--                      otherwise the line is printed to stdout.

bench = {}

function bench.headers(extra)
  local h = {
    ["Accept"] = "application/json",
    ["OData-MaxVersion"] = "4.0",
    ["OData-Version"] = "4.0",
  }
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    h["Authorization"] = "Bearer " .. token
  end
  local caller = os.getenv("BENCH_CALLER_ID")
  if caller and caller ~= "" then
    h["MSCRMCallerID"] = caller  -- impersonation (bench/security.sh)
  end
  if extra then
    for k, v in pairs(extra) do h[k] = v end
  end
  return h
end

-- Reads non-empty, trimmed lines of a file named by an environment variable.
function bench.read_lines(env_name)
  local path = os.getenv(env_name)
  if not path or path == "" then
    error(env_name .. " is not set")
  end
  local f, err = io.open(path, "r")
  if not f then
    error("cannot open " .. path .. ": " .. tostring(err))
  end
  local lines = {}
  for line in f:lines() do
    line = line:gsub("^%s+", ""):gsub("%s+$", "")
    if line ~= "" then lines[#lines + 1] = line end
  end
  f:close()
  if #lines == 0 then
    error(path .. " is empty")
  end
  return lines
end

-- Minimal percent-encoding for a value placed in a query string.
function bench.urlencode(s)
  return (s:gsub("[^%w%-%._~'(),]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- Give every thread its own number (the global `tid` inside the thread's Lua state) so threads
-- start at different offsets and generate distinct keys.
local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local line = string.format(
    "rps=%.2f requests=%d duration_s=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d",
    secs > 0 and summary.requests / secs or 0, summary.requests, secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout)
  local out = os.getenv("BENCH_RESULT_FILE")
  if out and out ~= "" then
    local f = assert(io.open(out, "a"))
    f:write(line, "\n")
    f:close()
  else
    print(line)
  end
end
