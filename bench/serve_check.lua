-- serve_check.lua - wrk script for bench/serve.sh: POST /v1/checks over HTTPS keep-alive,
-- cycling through real (synthetic) donor bodies, one JSON object per line of the file named
-- by RV_BODIES, with the checker's session token from RV_TOKEN. Each wrk thread starts at a
-- different place in the list. At the end it prints one machine-readable line:
--   serve_check: requests N duration_us D non2xx S connect C read R write W timeout T
--                p50_us A p99_us B
-- Non-2xx answers are also counted by status, so that a failing run says why.

local bodies = {}
local path = os.getenv("RV_BODIES")
local token = os.getenv("RV_TOKEN")
assert(path and token, "RV_BODIES and RV_TOKEN must be set")
for line in io.lines(path) do
    if #line > 0 then
        bodies[#bodies + 1] = line
    end
end
assert(#bodies > 0, "no bodies in " .. path)

local threads = {}
local tid = 0

function setup(thread)
    thread:set("tid", tid)
    tid = tid + 1
    table.insert(threads, thread)
end

local i = 0
local statuses = {}

function init(args)
    -- tid was set by setup() in this thread's Lua state
    i = ((tid or 0) * 7919) % #bodies
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
    i = i % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[i])
end

function response(status, headers, body)
    if status ~= 200 then
        statuses[status] = (statuses[status] or 0) + 1
        bad = ""
        for k, v in pairs(statuses) do
            bad = bad .. k .. "=" .. v .. " "
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    for _, t in ipairs(threads) do
        local b = t:get("bad")
        if b and #b > 0 then
            io.write("serve_check: non-200 statuses in a thread: " .. b .. "\n")
        end
    end
    io.write(string.format(
        "serve_check: requests %d duration_us %d non2xx %d connect %d read %d write %d timeout %d p50_us %d p99_us %d\n",
        summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
