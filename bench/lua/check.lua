-- GET /auth/check with a different credential per request, as nginx's auth_request sends it.
--   BENCH_LINES    file of Authorization values ("Basic ..." or "Bearer ..."), one per line
--   BENCH_SKIP     skip the first N lines (another scenario used them)
--   BENCH_LIMIT    then use at most N lines (0: all)
--   BENCH_THREADS  wrk's -t: thread i of n takes lines i, i+n, ..., so no line is used twice
--                  until a thread has gone through its share, then it starts over
--   BENCH_URI      the X-Original-URI (the method is GET)
-- Each request is formatted once, in init: formatting it in request(), as each was sent, took
-- a third of the load generator's CPU (against the bare hello, 121,000 instead of 174,000
-- requests/s), and wrk shares the machine with the server it measures.
-- At the end it prints "bench-first-use <first uses> <requests> <lines>": how many requests
-- carried a credential for the first time in this run (bench/run reports the share).
local threads = {}
local count = 0

function setup(thread)
  thread:set("index", count)
  table.insert(threads, thread)
  count = count + 1
end

function init(args)
  local total = tonumber(os.getenv("BENCH_THREADS"))
  local skip = tonumber(os.getenv("BENCH_SKIP") or "0")
  local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
  uri = os.getenv("BENCH_URI")
  requests = {}
  local n = 0
  local seen = 0
  for line in io.lines(os.getenv("BENCH_LINES")) do
    seen = seen + 1
    if seen > skip then
      if limit > 0 and n >= limit then
        break
      end
      if n % total == index then
        table.insert(requests, wrk.format("GET", "/auth/check", {
          ["Authorization"] = line,
          ["X-Original-Method"] = "GET",
          ["X-Original-URI"] = uri,
        }))
      end
      n = n + 1
    end
  end
  nlines = #requests
  made = 0
  next_line = 1
end

function request()
  local formatted = requests[next_line]
  next_line = next_line % nlines + 1
  made = made + 1
  return formatted
end

function done(summary, latency, requests)
  local first, all, total_lines = 0, 0, 0
  for _, thread in ipairs(threads) do
    local m = thread:get("made") or 0
    local l = thread:get("nlines") or 0
    first = first + math.min(m, l)
    all = all + m
    total_lines = total_lines + l
  end
  io.write(string.format("bench-first-use %d %d %d\n", first, all, total_lines))
end
