-- wrk script of scripts/bench.sh: every request picks one of the visitors whose cookies
-- are listed (one `bandits=...` per line) in the file BENCH_COOKIES, and asks for `/` 80%
-- of the time and `/contact/` 20%. With BENCH_NEW_VISITORS=p, a share p of the requests
-- for `/` carry no cookie: a new visitor each time, so the plugin counts all run long.

local cookies = {}
for line in io.lines(os.getenv("BENCH_COOKIES")) do
  if line ~= "" then
    cookies[#cookies + 1] = line
  end
end
if #cookies == 0 then
  error("no visitor cookies in " .. os.getenv("BENCH_COOKIES"))
end
local new_visitors = tonumber(os.getenv("BENCH_NEW_VISITORS") or "0")
-- A browser's User-Agent: the plugin does not count bots.
local agent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
end

function request()
  local path = "/"
  if math.random() < 0.2 then
    path = "/contact/"
  end
  local headers = { ["User-Agent"] = agent }
  if path == "/contact/" or math.random() >= new_visitors then
    headers["Cookie"] = cookies[math.random(#cookies)]
  end
  return wrk.format("GET", path, headers)
end
