-- wrk script for bench/run: template sends spread over the seeded tenants and over many
-- recipients, with the answers counted by status.
--
--   wrk -t2 -c64 -d20s --latency -s bench/send.lua http://127.0.0.1:18080
--
-- Environment (all optional):
--   BENCH_MODE     waygate (default): POST /api/user/whatsapp/send as the tenants;
--                  kannel: GET /cgi-bin/sendsms (BENCH_KANNEL_USER / BENCH_KANNEL_PASS)
--   BENCH_TENANTS  tenants file written by bench-seed (default bench/out/tenants.lua)
--   BENCH_THREADS  wrk's -t, so that threads use disjoint recipients (default 2)
--   BENCH_OFFSET   first recipient index (the warm-up uses another range than the run)
--   BENCH_REPEAT   share of sends to a small pool of returning recipients (default 0.05);
--                  all others go to a (sender, recipient) pair not used before in this run,
--                  so they start a new conversation
--   BENCH_RATE     if set (with BENCH_CONNECTIONS = wrk's -c), pace the load at about this many
--                  requests/s with wrk's delay(): each connection waits a random gap (exponential,
--                  mean c/rate) between requests
--                  (wrk is closed-loop; bench/run calibrates the target once during warm-up)
--   BENCH_ACKED    if set, each thread appends the message_id of every 200 answer to
--                  BENCH_ACKED.<thread>, for bench/run's "nothing acknowledged is missing" check
--
-- done() prints machine-readable lines: STATUS <code> <n>, REQUESTS, DURATION_US, RPS,
-- P50_US, P90_US, P99_US, MAX_US, SOCKET_ERRORS <connect> <read> <write> <timeout>.

local mode = os.getenv("BENCH_MODE") or "waygate"
local tenants_path = os.getenv("BENCH_TENANTS") or "bench/out/tenants.lua"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local repeat_share = tonumber(os.getenv("BENCH_REPEAT") or "0.05")
local acked_prefix = os.getenv("BENCH_ACKED")
local kannel_user = os.getenv("BENCH_KANNEL_USER") or "bench"
local kannel_pass = os.getenv("BENCH_KANNEL_PASS") or "bench"

-- The same numbers as bench-seed's recipient(k): +1 AAA 555 LLLL, 9,000 per area code,
-- skipping the suffixes the fake Twilio fails on purpose (6316, 6318; 0000 never occurs).
local areas = { "415", "212", "646", "312", "617", "206", "303", "512", "702", "305" }
local per_area = 9000
local function recipient(k)
  local area = areas[(math.floor(k / per_area) % #areas) + 1]
  local line = 1000 + k % per_area
  if line == 6316 or line == 6318 then line = line + 1 end
  return "+1" .. area .. "555" .. line
end

local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local conns = tonumber(os.getenv("BENCH_CONNECTIONS") or "0")
if rate > 0 and conns > 0 then
  local interval = 1000 * conns / rate -- mean milliseconds between one connection's requests
  function delay()
    -- Exponential gaps, so that each connection is a Poisson source and the load is one. A
    -- fixed gap kept the connections that one commit answered together in step: they came
    -- back as a burst one gap later, every gap. wrk takes whole milliseconds: dither.
    local gap = -interval * math.log(1 - math.random())
    return math.floor(gap + math.random())
  end
end

-- main thread: hand each thread its index, keep the thread objects for done()
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

-- per thread
local tenants
local counter = 0
statuses = {}          -- global so that done() can thread:get() it
local acked_file
acked_buf = {}         -- ids not yet written when the thread stops; done() writes them

function init(args)
  if mode == "waygate" then
    tenants = dofile(tenants_path)
    assert(#tenants > 0, "no tenants in " .. tenants_path)
  end
  if acked_prefix then
    acked_file = assert(io.open(acked_prefix .. "." .. tid, "w"))
  end
  math.randomseed(os.time() + tid * 7919)
end

local function next_pair()
  local n = tenants and #tenants or 1
  local t = (counter + tid * 997) % n + 1
  local k
  if math.random() < repeat_share then
    k = math.random(0, 99)
  else
    k = offset + math.floor(counter / n) * nthreads + tid
  end
  counter = counter + 1
  return t, k
end

function request()
  local t, k = next_pair()
  local code = string.format("%06d", counter % 1000000)
  if mode == "kannel" then
    local path = "/cgi-bin/sendsms?username=" .. kannel_user .. "&password=" .. kannel_pass ..
      "&from=14155550100&to=" .. recipient(k):sub(2) ..
      "&text=Hello+Ada%2C+your+code+is+" .. code .. "."
    return wrk.format("GET", path)
  end
  local tenant = tenants[t]
  local body = '{"sender_id":' .. tenant.sender_id .. ',"template_id":' .. tenant.template_id ..
    ',"recipient_phone":"' .. recipient(k) .. '","variables":{"1":"Ada","2":"' .. code .. '"}}'
  return wrk.format("POST", "/api/user/whatsapp/send", {
    ["Authorization"] = "Bearer " .. tenant.key,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if acked_file and status == 200 then
    local id = body:match('"message_id":(%d+)')
    if id then
      acked_buf[#acked_buf + 1] = id
      if #acked_buf >= 2048 then
        acked_file:write(table.concat(acked_buf, "\n"), "\n")
        acked_file:flush()
        acked_buf = {}
      end
    end
  end
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do
      totals[code] = (totals[code] or 0) + n
    end
    if acked_prefix then
      local pending = thread:get("acked_buf")
      if pending and #pending > 0 then
        local f = assert(io.open(acked_prefix .. "." .. thread:get("tid"), "a"))
        f:write(table.concat(pending, "\n"), "\n")
        f:close()
      end
    end
  end
  local codes = {}
  for code in pairs(totals) do table.insert(codes, code) end
  table.sort(codes)
  for _, code in ipairs(codes) do
    io.write(string.format("STATUS %d %d\n", code, totals[code]))
  end
  local e = summary.errors
  io.write(string.format("REQUESTS %d\n", summary.requests))
  io.write(string.format("DURATION_US %d\n", summary.duration))
  io.write(string.format("RPS %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("P50_US %d\n", latency:percentile(50)))
  io.write(string.format("P90_US %d\n", latency:percentile(90)))
  io.write(string.format("P99_US %d\n", latency:percentile(99)))
  io.write(string.format("MAX_US %d\n", latency.max))
  io.write(string.format("SOCKET_ERRORS %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
end
