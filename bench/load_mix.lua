-- wrk script for bench/load_bench.py: a weighted mix of API requests, each with its
-- role's bearer token. bench/load_bench.py writes the request table to the file named by
-- the LOAD_MIX_REQUESTS environment variable (one line: kind<TAB>token<TAB>path).
-- Counts responses per status; done() prints one JSON line with the figures.

local requests = {}
counts = {}   -- global: done() reads it from every thread with thread:get
local threads = {}
local idx = 0

local function load_requests()
  local f = assert(io.open(os.getenv("LOAD_MIX_REQUESTS"), "r"))
  for line in f:lines() do
    local kind, token, path = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    if kind then
      requests[#requests + 1] = {kind = kind, token = token, path = path}
    end
  end
  f:close()
end

function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  load_requests()
  idx = (tonumber(wrk.thread:get("tid")) or 0) * 7919 % #requests
  counts = {}
end

local current = nil

function request()
  idx = idx % #requests + 1
  current = requests[idx]
  return wrk.format("GET", current.path, {["Authorization"] = "Bearer " .. current.token,
                                          ["Accept"] = "*/*"})
end

function response(status, headers, body)
  -- (a thread multiplexes connections, so the status is not attributed to a request kind)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests_)
  local merged = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    if c then
      for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
    end
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format("%q:%d", k, v) end
  local e = summary.errors
  io.write(string.format(
    'LOAD_MIX_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.0f,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d,' ..
    '"err_status":%d,"by_status":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ",")))
end
