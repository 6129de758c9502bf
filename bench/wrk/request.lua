-- One kind of request, sent by wrk (https://github.com/wg/wrk) as fast as the server answers.
-- Arguments: METHOD PATH EXPECTED_STATUS AUTHORIZATION BODY
-- In BODY, {n} becomes a number unique within the run (e.g. a fresh external order id).
-- done() prints one JSON line with the counts and latency percentiles for bench/wrk.py.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  method, path, expected, authorization, template = args[1], args[2], tonumber(args[3]), args[4], args[5]
  counter, unexpected, first_unexpected = 0, 0, ""
  headers = { ["Content-Type"] = "application/json" }
  if authorization ~= "" then headers["Authorization"] = authorization end
end

function request()
  counter = counter + 1
  local body = nil
  if template ~= "" then body = template:gsub("{n}", id .. "-" .. counter) end
  return wrk.format(method, path, headers, body)
end

function response(status, _, body)
  if status ~= expected then
    unexpected = unexpected + 1
    if first_unexpected == "" then first_unexpected = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, _)
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
    if first == "" then first = thread:get("first_unexpected") end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "unexpected": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "first_unexpected": "%s"}\n',
    summary.requests, summary.duration / 1e6, bad,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), first:gsub('[%c"\\]', " ")))
end
