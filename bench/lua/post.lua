-- A form POST with the body in BENCH_BODY (the Authorization header comes from wrk -H).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
