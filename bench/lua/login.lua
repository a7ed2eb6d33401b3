-- POST /login with a wrong password, over and over, from one address: the flood of the
-- "/auth/check during a sign-in flood" scenario.
--   BENCH_COOKIE the visitor's CSRF cookie, NAME=VALUE
--   BENCH_CSRF   the form token (the value of the CSRF cookie)
--   BENCH_EMAIL  the address signed in as, form-encoded; "{n}" in it is replaced by a number
--                that differs on every request, so that each attempt names another address
--                (credential stuffing) rather than run into one address's lock
-- At the end it prints "bench-status <status> <count>" for each status answered, and
-- "bench-busy-without-retry-after <count>" for 503 answers without Retry-After.
local threads = {}
local count = 0

function setup(thread)
  thread:set("index", count)
  table.insert(threads, thread)
  count = count + 1
end

function init(args)
  cookie = os.getenv("BENCH_COOKIE")
  csrf = os.getenv("BENCH_CSRF")
  email = os.getenv("BENCH_EMAIL")
  n = 0
  c401, c429, c503, c_other, busy_without_retry_after = 0, 0, 0, 0, 0
  other_status = 0
end

function request()
  n = n + 1
  local address = email:gsub("{n}", tostring(index * 1000000000 + n))
  local body = "csrf_token=" .. csrf .. "&email=" .. address .. "&password=not+the+password"
  return wrk.format("POST", "/login", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = cookie,
  }, body)
end

function response(status, headers, body)
  if status == 401 then
    c401 = c401 + 1
  elseif status == 429 then
    c429 = c429 + 1
  elseif status == 503 then
    c503 = c503 + 1
    if not (headers["retry-after"] or headers["Retry-After"]) then
      busy_without_retry_after = busy_without_retry_after + 1
    end
  else
    c_other = c_other + 1
    other_status = status
  end
end

function done(summary, latency, requests)
  local totals = { [401] = 0, [429] = 0, [503] = 0 }
  local other, other_status_seen, busy = 0, 0, 0
  for _, thread in ipairs(threads) do
    totals[401] = totals[401] + (thread:get("c401") or 0)
    totals[429] = totals[429] + (thread:get("c429") or 0)
    totals[503] = totals[503] + (thread:get("c503") or 0)
    other = other + (thread:get("c_other") or 0)
    busy = busy + (thread:get("busy_without_retry_after") or 0)
    local s = thread:get("other_status") or 0
    if s ~= 0 then
      other_status_seen = s
    end
  end
  for status, c in pairs(totals) do
    io.write(string.format("bench-status %d %d\n", status, c))
  end
  io.write(string.format("bench-status-other %d %d\n", other, other_status_seen))
  io.write(string.format("bench-busy-without-retry-after %d\n", busy))
end
