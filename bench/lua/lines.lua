-- Each request uses the next line of BENCH_LINES, each wrk thread its own share of the lines
-- (thread i of n takes lines i, i+n, ...), so no line is used twice until a thread wraps.
--   BENCH_MODE=basic    the line is an "Authorization: Basic" value; GET with X-Original-*
--   BENCH_MODE=code     the line is an authorization code; POST the exchange and keep the
--                       refresh token of each answer in BENCH_OUT.<thread>
--   BENCH_MODE=refresh  the line is a refresh token; POST the refresh
-- BENCH_AUTH is the client's "Basic ..." value for the token endpoint modes.
local threads = {}
local count = 0

function setup(thread)
  thread:set("index", count)
  table.insert(threads, thread)
  count = count + 1
end

function init(args)
  mode = os.getenv("BENCH_MODE")
  auth = os.getenv("BENCH_AUTH")
  redirect_uri = os.getenv("BENCH_REDIRECT_URI")
  local total = tonumber(os.getenv("BENCH_THREADS"))
  lines = {}
  local n = 0
  for line in io.lines(os.getenv("BENCH_LINES")) do
    if n % total == index then
      table.insert(lines, line)
    end
    n = n + 1
  end
  next_line = 1
  if mode == "code" then
    out = io.open(os.getenv("BENCH_OUT") .. "." .. index, "w")
    out:setvbuf("line")
  end
end

function request()
  local line = lines[next_line]
  next_line = next_line % #lines + 1
  if mode == "basic" then
    return wrk.format("GET", "/auth/check", {
      ["Authorization"] = line,
      ["X-Original-Method"] = "GET",
      ["X-Original-URI"] = "/v1/trips",
    })
  end
  local body
  if mode == "code" then
    body = "grant_type=authorization_code&code=" .. line .. "&redirect_uri=" .. redirect_uri
  else
    body = "grant_type=refresh_token&refresh_token=" .. line
  end
  return wrk.format("POST", "/oauth/v1/token", {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, body)
end

function response(status, headers, body)
  if out and status == 200 then
    local token = string.match(body, '"refresh_token":"([^"]+)"')
    if token then
      out:write(token, "\n")
    end
  end
end

function done(summary, latency, requests)
  -- wrk calls done() once, in the main state; the per-thread files are flushed at exit.
end
