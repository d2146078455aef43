"""Writes docs/benchmarks.md and its plots from one run of scripts/bench.sh.

Input: the RESULT lines of cerrojo-bench (one per measurement), the
key=value facts the script collected (machine, versions, start-up times,
idle memory), and each measurement's throughput series and latency
distribution. Output: the Markdown page, and one PNG per measurement made
with gnuplot. Every number on the page comes from that one run.
"""

import argparse
import os
import subprocess

KIB_PER_MIB = 1024.0

# Published sizing the per-core figures are set beside, as the project's
# benchmark brief states it (not rechecked against the vendors' pages):
# Keycloak, 15 password logins/s and 120 refresh requests/s per vCPU and
# about 1250 MB per pod; Ory Hydra, about 7,900 introspections/s on 2
# CPUs with an in-memory store.
KEYCLOAK_LOGINS_PER_VCPU = 15.0
KEYCLOAK_REFRESH_PER_VCPU = 120.0
KEYCLOAK_MEMORY_MIB = 1250.0
HYDRA_INTROSPECT_PER_S = 7900.0
HYDRA_CPUS = 2.0

SERVICES = ("kms", "session", "auth", "gateway")
IDLE_RSS_LIMIT_MIB = 16.0
LOAD_RSS_LIMIT_MIB = 64.0
READY_LIMIT_MS = 500.0

# Measurements in page order, with what each drives.
MEASUREMENTS = [
    ("argon2", "ceiling", "Argon2id verifications, common/password.h, "
     "one thread per core"),
    ("sign-rs256", "ceiling", "RS256 (RSA-2048) signatures, one thread per "
     "core"),
    ("sign-eddsa", "ceiling", "EdDSA (Ed25519) signatures, one thread per "
     "core"),
    ("x25519", "ceiling", "X25519 Diffie-Hellman, one thread per core"),
    ("pg-write", "ceiling", "Postgres single-row INSERT, each its own "
     "commit (libpq, one connection per thread)"),
    ("pg-refresh-writes", "ceiling", "Postgres: one transaction of the 3 "
     "row writes a refresh makes"),
    ("grpc-health", "ceiling", "gRPC Health/Check on auth (the project's "
     "gRPC framework, trivial unary call)"),
    ("one-hop", "ceiling", "gateway GET /v1/bench/ping: rate limit, one "
     "Health/Check to auth, JSON reply"),
    ("nginx-static", "ceiling", "nginx serving a small static JSON file"),
    ("nginx-proxy", "ceiling", "nginx proxying to a second nginx over a "
     "keep-alive upstream"),
    ("login-stateless.rs256", "flow", "POST /v1/login, stateless seal, "
     "RS256 tokens"),
    ("login-stateless.eddsa", "flow", "POST /v1/login, stateless seal, "
     "EdDSA tokens"),
    ("login-stateful", "flow", "POST /v1/login with a handshake (opens a "
     "session)"),
    ("refresh.rs256", "flow", "POST /v1/refresh, each connection chaining "
     "its own token, RS256"),
    ("refresh.eddsa", "flow", "POST /v1/refresh, each connection chaining "
     "its own token, EdDSA"),
    ("handshake", "flow", "POST /v1/handshake"),
    ("me-stateless", "flow", "GET /v1/me, token inside the HPKE seal"),
    ("me-stateful", "flow", "GET /v1/me over the session's epoch keys"),
    ("jwks", "flow", "GET /.well-known/jwks.json"),
    ("introspect", "flow", "auth Introspect over gRPC"),
    ("flood.introspect", "flood", "Introspect during a login flood"),
    ("flood.me-stateful", "flood", "stateful GET /v1/me during a login "
     "flood"),
    ("flood-login.introspect", "flood", "the login flood beside "
     "Introspect"),
    ("flood-login.me-stateful", "flood", "the login flood beside "
     "GET /v1/me"),
]


def parse_kv(text):
    out = {}
    for item in text.split():
        if "=" in item:
            key, value = item.split("=", 1)
            out[key] = value
    return out


def load_results(path):
    results = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("RESULT "):
                kv = parse_kv(line[len("RESULT "):])
                results[kv.get("flow", "?")] = kv
    return results


def load_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                key, value = line.split("=", 1)
                meta[key] = value
    return meta


def num(result, key, default=None):
    try:
        return float(result[key])
    except (KeyError, TypeError, ValueError):
        return default


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return "{:,.0f}".format(value)
    return "{:.{}f}".format(value, digits)


def rate(results, name):
    r = results.get(name)
    return num(r, "rps") if r else None


def serial(*rates):
    """Rate of a request that needs each of these steps once in turn."""
    if any(r is None or r <= 0 for r in rates):
        return None
    return 1.0 / sum(1.0 / r for r in rates)


def plot(name, data_dir, plot_dir, title):
    series = os.path.join(data_dir, name + ".series")
    pct = os.path.join(data_dir, name + ".pct")
    if not (os.path.exists(series) and os.path.exists(pct)):
        return None
    png = os.path.join(plot_dir, name + ".png")
    script = "\n".join([
        "set terminal pngcairo size 1000,420 font 'Sans,10'",
        "set output '{}'".format(png),
        "set multiplot layout 1,2 title '{}'".format(title.replace("'", "")),
        "set grid",
        "set xlabel 'time (s)'",
        "set ylabel 'successful requests/s (250 ms slots)'",
        "set yrange [0:*]",
        "unset key",
        "plot '{}' using 1:2 with lines lw 2".format(series),
        "set logscale x 10",
        "set xlabel 'percentile'",
        "set ylabel 'latency (ms)'",
        "set xtics ('0' 1, '90' 10, '99' 100, '99.9' 1000, "
        "'99.99' 10000, '99.999' 100000)",
        "set xrange [1:100000]",
        "plot '{}' using 2:3 with linespoints lw 2 pt 7".format(pct),
        "unset multiplot",
    ])
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    return png


def cpu_us_per_request(result, own_cpu=False):
    """CPU time per request in microseconds: the sum over the watched
    processes, or with own_cpu the load generator's own (for the ceilings
    that run inside it)."""
    if result is None:
        return None
    if own_cpu:
        cpu_s = num(result, "loadgen_cpu_s")
        requests = num(result, "requests")
        if not cpu_s or not requests:
            return None
        return cpu_s * 1e6 / requests
    values = [float(v) for k, v in result.items()
              if k.endswith("_cpu_us_per_req")]
    if not values or sum(values) <= 0:
        return None
    return sum(values)


def target_row(rows, name, measured, required, ratio_min, unit="ratio",
               cpu_ratio=None):
    cpu_text = "-" if cpu_ratio is None else "{:.2f}".format(cpu_ratio)
    if measured is None or required is None or required == 0:
        rows.append((name, "n/a", "n/a", "n/a", cpu_text, "NOT MEASURED"))
        return
    if unit == "ratio":
        ratio = measured / required
        verdict = "PASS" if ratio >= ratio_min else "MISS"
        rows.append((name, fmt(measured), fmt(required),
                     "{:.2f} (needs >= {:.2f})".format(ratio, ratio_min),
                     cpu_text, verdict))
    else:
        verdict = "PASS" if measured < required else "MISS"
        rows.append((name, "{} {}".format(fmt(measured, 2), unit),
                     "< {} {}".format(fmt(required, 0), unit), "-", "-",
                     verdict))


def cpu_ratio(results, flow, *ceilings):
    """Capacity ratio from CPU cost: the ceiling's CPU per request over the
    flow's (services only). Each ceiling is (name, own_cpu)."""
    flow_cpu = cpu_us_per_request(results.get(flow))
    costs = [cpu_us_per_request(results.get(n), own) for n, own in ceilings]
    if flow_cpu is None or any(c is None for c in costs):
        return None
    return sum(costs) / flow_cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plots", required=True)
    ap.add_argument("--notes", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "notes.md"))
    args = ap.parse_args()

    results = load_results(args.results)
    meta = load_meta(args.meta)
    cores = float(meta.get("nproc", "1") or 1)
    out = []
    w = out.append

    w("# Benchmarks")
    w("")
    w("Generated by `make bench` (scripts/bench.sh, bench/report.py) on {} "
      "at commit `{}`; every run overwrites this page. Each number below "
      "comes from that one run on the machine described here.".format(
          meta.get("date", "?"), meta.get("commit", "?")))
    w("")
    w("**Read these numbers as one run on a shared VM.** The machine's {} "
      "cores ran the services, Postgres, Redis and the load generator "
      "together. Other tenants of the host may have taken a share, and the "
      "load average was {} when the run started. Ratios taken within one "
      "run are more telling than absolute rates. Rerun on an idle machine "
      "before quoting any figure.".format(meta.get("nproc", "?"),
                                          meta.get("loadavg", "?")))
    w("")

    w("## Method")
    w("")
    w("- `cerrojo-bench` (bench/) is a closed-loop load generator: each "
      "connection is a thread with its own client (the C client library, "
      "one libcurl easy handle with keep-alive; or its own gRPC channel; "
      "or its own libpq connection) that sends its next request as soon "
      "as the previous one is answered. Threads rather than an event loop "
      "because the client library is blocking and every sealed request "
      "costs client-side crypto (HPKE, AES-GCM) that an event loop would "
      "serialize onto one core; at 64 connections the thread overhead is "
      "small beside that work.")
    w("- Users, sessions and tokens each flow needs are created before the "
      "clock starts (each connection registers its own user). The refresh "
      "flow chains each connection's own refresh token, so every timed "
      "request is a valid rotation.")
    w("- Each latency goes into a log-bucket histogram (64 linear "
      "sub-buckets per power of two, so values are within 1.6 %); p50, p99 "
      "and p99.9 come from it. Only successful requests are timed; errors "
      "are counted by class (transport, rate limited, 4xx, 5xx, gRPC "
      "status, wrong answer, local).")
    w("- Closed loop means latency is measured from when a request was "
      "sent, not from when an open-loop schedule would have sent it: under "
      "overload the tail is understated (coordinated omission).")
    w("- CPU per request: utime + stime of every service process from "
      "/proc/<pid>/stat, the difference over the timed part divided by the "
      "successful requests. Peak memory: VmHWM from /proc/<pid>/status, "
      "reset to the current RSS before each measurement (writing 5 to "
      "/proc/<pid>/clear_refs), so each flow shows its own peak.")
    w("- Start-to-ready: time from launching a service to its first "
      "successful readiness probe (one Health/Check from `cerrojo-bench "
      "grpc-health` for the gRPC services, `GET /readyz` for the "
      "gateway), polled every 10 ms; each probe itself takes a few "
      "milliseconds, so figures carry about that much error.")
    w("- Postgres runs with its default durability (fsync on). The gateway "
      "runs with per-IP rate limits raised out of the way "
      "(CERROJO_GATEWAY_RATE_PER_MINUTE and friends) and "
      "CERROJO_GATEWAY_BENCH_ROUTE=true for the one-hop route.")
    w("")

    w("## Machine and versions")
    w("")
    w("| item | value |")
    w("| --- | --- |")
    for key, label in [("nproc", "cores (nproc)"), ("cpu", "CPU"),
                       ("mem", "memory"), ("loadavg", "load average at start"),
                       ("gcc", "gcc"), ("openssl", "OpenSSL"),
                       ("libsodium", "libsodium"), ("postgres", "PostgreSQL"),
                       ("redis", "Redis"), ("nginx", "nginx"),
                       ("libcurl", "libcurl"), ("grpc", "gRPC C core"),
                       ("perf", "perf")]:
        w("| {} | {} |".format(label, meta.get(key, "?")))
    w("")
    w("Argon2id parameters: {} MiB, {} passes, 1 lane (libsodium), in the "
      "ceiling and in auth alike. Timed part per measurement: {} s "
      "(BENCH_SECONDS).".format(
          int(meta.get("argon2_memory", "0")) // (1024 * 1024),
          meta.get("argon2_passes", "?"), meta.get("seconds", "?")))
    w("")

    # Targets.
    rows = []
    argon = rate(results, "argon2")
    for name in ("login-stateless.rs256", "login-stateful"):
        target_row(rows, "{} vs Argon2id ceiling".format(name),
                   rate(results, name), argon, 0.9,
                   cpu_ratio=cpu_ratio(results, name, ("argon2", True)))
    for flow in ("introspect", "me-stateful"):
        target_row(rows, "{} during a login flood vs unloaded".format(flow),
                   rate(results, "flood." + flow), rate(results, flow), 0.5)
    for alg, sign in (("rs256", "sign-rs256"), ("eddsa", "sign-eddsa")):
        target_row(rows, "refresh {} vs 1/(1/sign + 1/refresh-writes)".format(
            alg.upper()), rate(results, "refresh." + alg),
            serial(rate(results, sign), rate(results, "pg-refresh-writes")),
            0.6)
    one_hop = rate(results, "one-hop")
    target_row(rows, "me-stateful vs one-hop route",
               rate(results, "me-stateful"), one_hop, 0.6,
               cpu_ratio=cpu_ratio(results, "me-stateful",
                                   ("one-hop", False)))
    target_row(rows, "me-stateful p99 at {} connections".format(
        results.get("me-stateful", {}).get("connections", "?")),
        num(results.get("me-stateful", {}), "p99_ms"), 10.0, None, unit="ms")
    target_row(rows, "me-stateless vs 1/(1/one-hop + 1/x25519)",
               rate(results, "me-stateless"),
               serial(one_hop, rate(results, "x25519")), 0.6,
               cpu_ratio=cpu_ratio(results, "me-stateless",
                                   ("one-hop", False), ("x25519", True)))
    target_row(rows, "introspect vs gRPC Health/Check",
               rate(results, "introspect"), rate(results, "grpc-health"), 0.5,
               cpu_ratio=cpu_ratio(results, "introspect",
                                   ("grpc-health", False)))
    target_row(rows, "one-hop route vs nginx proxy to nginx", one_hop,
               rate(results, "nginx-proxy"), 0.4,
               cpu_ratio=cpu_ratio(results, "one-hop", ("nginx-proxy", False)))

    mem_rows = []
    for svc in SERVICES:
        for alg in ("RS256", "EdDSA"):
            idle = meta.get("idle_rss_kb.{}.{}".format(alg, svc))
            ready = meta.get("ready_ms.{}.{}".format(alg, svc))
            if idle is None:
                continue
            peak = 0.0
            peak_flow = ""
            suffix = ".eddsa" if alg == "EdDSA" else ""
            for name, r in results.items():
                in_stack = name.endswith(".eddsa") == bool(suffix)
                hwm = num(r, svc + "_hwm_kb")
                if in_stack and hwm is not None and hwm > peak:
                    peak, peak_flow = hwm, name
            idle_mib = float(idle) / KIB_PER_MIB
            peak_mib = peak / KIB_PER_MIB
            pss = meta.get("idle_pss_kb.{}.{}".format(alg, svc))
            anon = meta.get("idle_anon_kb.{}.{}".format(alg, svc))
            mem_rows.append((svc, alg, idle_mib, peak_mib, peak_flow,
                             float(ready) if ready else None,
                             float(pss) / KIB_PER_MIB if pss else None,
                             float(anon) / KIB_PER_MIB if anon else None))
            rows.append(("{} ({}) idle RSS".format(svc, alg),
                         "{:.1f} MiB".format(idle_mib),
                         "< {:.0f} MiB".format(IDLE_RSS_LIMIT_MIB), "-", "-",
                         "PASS" if idle_mib < IDLE_RSS_LIMIT_MIB else "MISS"))
            rows.append(("{} ({}) peak RSS under load".format(svc, alg),
                         "{:.1f} MiB".format(peak_mib),
                         "< {:.0f} MiB".format(LOAD_RSS_LIMIT_MIB), "-", "-",
                         "PASS" if 0 < peak_mib < LOAD_RSS_LIMIT_MIB
                         else "MISS"))
            if ready:
                rows.append(("{} ({}, first start) start to ready".format(
                    svc, alg), "{} ms".format(ready),
                    "< {:.0f} ms".format(READY_LIMIT_MS), "-", "-",
                    "PASS" if float(ready) < READY_LIMIT_MS else "MISS"))
    for svc in SERVICES:
        warm = meta.get("ready_ms.restart.{}".format(svc))
        if warm:
            rows.append(("{} (restart, keys present) start to ready".format(
                svc), "{} ms".format(warm),
                "< {:.0f} ms".format(READY_LIMIT_MS), "-", "-",
                "PASS" if float(warm) < READY_LIMIT_MS else "MISS"))

    w("## Targets")
    w("")
    w("Each target is a ratio of two rates measured in this run (or an "
      "absolute bound). The refresh ceiling chains the signing rate and "
      "the rate of Postgres transactions made of the 3 row writes a "
      "refresh makes: mark the token used with its successor's id, insert "
      "the successor, and the audit event. The stateless ceiling chains "
      "the one-hop route with one X25519 (the server's side of an HPKE "
      "open).")
    w("")
    w("The result column judges the ratio of rates, as the targets are "
      "stated. Because other tenants took an uneven share of the cores "
      "during each measurement, the CPU ratio column adds a check that "
      "does not depend on that share: the ceiling's CPU time per request "
      "over the flow's (summed over the service processes; the load "
      "generator's own CPU for the in-process ceilings), that is the ratio "
      "of what each would reach on the same dedicated cores. It is absent "
      "where a side has no CPU figure (Postgres and flood runs).")
    w("")
    w("| target | measured | required | ratio | CPU ratio | result |")
    w("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        w("| {} | {} | {} | {} | {} | {} |".format(*row))
    w("")

    w("## Summary")
    w("")
    w("| measurement | connections | requests/s | p50 ms | p99 ms | "
      "p99.9 ms | errors | CPU of all services per request (us) |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, kind, _ in MEASUREMENTS:
        r = results.get(name)
        if r is None:
            continue
        svc_cpu = [num(r, s + "_cpu_us_per_req") for s in SERVICES]
        svc_cpu = [v for v in svc_cpu if v is not None]
        w("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            name, r.get("connections"), fmt(num(r, "rps")),
            fmt(num(r, "p50_ms"), 2), fmt(num(r, "p99_ms"), 2),
            fmt(num(r, "p999_ms"), 2), r.get("errors"),
            fmt(sum(svc_cpu), 0) if svc_cpu else "-"))
    w("")

    w("## Per core, beside published sizing")
    w("")
    w("Per-core figures divide a rate by the machine's {:.0f} cores, though "
      "the load generator shared them; they are lower bounds of what the "
      "services alone would reach.".format(cores))
    w("")
    w("| figure | cerrojo (this run) | published |")
    w("| --- | --- | --- |")
    login = rate(results, "login-stateless.rs256")
    refresh = rate(results, "refresh.rs256")
    intro = rate(results, "introspect")
    w("| password logins/s per core | {} | Keycloak: {:.0f} per vCPU |".format(
        fmt(login / cores if login else None), KEYCLOAK_LOGINS_PER_VCPU))
    w("| refresh requests/s per core | {} | Keycloak: {:.0f} per vCPU |".format(
        fmt(refresh / cores if refresh else None), KEYCLOAK_REFRESH_PER_VCPU))
    w("| introspections/s on {:.0f} cores | {} | Ory Hydra: about {:,.0f} on "
      "{:.0f} CPUs (in-memory store) |".format(
          cores, fmt(intro), HYDRA_INTROSPECT_PER_S, HYDRA_CPUS))
    total_peak = sum(m[3] for m in mem_rows if m[1] == "RS256")
    w("| memory of one full deployment under load | {:.0f} MiB (sum of the "
      "four services' peaks) | Keycloak: about {:.0f} MB per pod |".format(
          total_peak, KEYCLOAK_MEMORY_MIB))
    w("")
    w("Keycloak's figures include its database work with a real "
      "persistent store and are measured on dedicated cores; Hydra's "
      "in-memory store skips Postgres. Neither comparison is like for "
      "like.")
    w("")

    w("## Memory and start-up")
    w("")
    w("Idle RSS counts the pages of shared libraries (libgrpc, libcrypto, "
      "libstdc++, ...) that every service maps; idle Pss divides those "
      "among the processes sharing them, and idle anonymous memory is the "
      "service's own heap and stacks.")
    w("")
    w("| service | stack | idle RSS (MiB) | idle Pss (MiB) | idle anonymous "
      "(MiB) | peak RSS under load (MiB) | peak during | first start to "
      "ready (ms) |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for svc, alg, idle, peak, flow, ready, pss, anon in mem_rows:
        w("| {} | {} | {:.1f} | {} | {} | {:.1f} | {} | {} |".format(
            svc, alg, idle, fmt(pss), fmt(anon), peak, flow or "-",
            fmt(ready, 0) if ready is not None else "n/a"))
    w("")

    w("## Each measurement")
    w("")
    for name, kind, what in MEASUREMENTS:
        r = results.get(name)
        if r is None:
            continue
        w("### {}".format(name))
        w("")
        w("{}. {} connections, {} s.".format(what, r.get("connections"),
                                             r.get("seconds")))
        w("")
        w("| requests | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | "
          "errors | load generator CPU s |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- |")
        w("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r.get("requests"), fmt(num(r, "rps")), fmt(num(r, "p50_ms"), 3),
            fmt(num(r, "p99_ms"), 3), fmt(num(r, "p999_ms"), 3),
            fmt(num(r, "max_ms"), 3), r.get("errors"),
            r.get("loadgen_cpu_s")))
        errs = ["{} {}".format(k[4:], v) for k, v in r.items()
                if k.startswith("err_") and v != "0"]
        if errs:
            w("")
            w("Errors by class: {}.".format(", ".join(errs)))
        if any(s + "_cpu_ms" in r for s in SERVICES):
            w("")
            w("| service | CPU per request (us) | CPU total (ms) | RSS before "
              "(MiB) | peak RSS (MiB) |")
            w("| --- | --- | --- | --- | --- |")
            for s in SERVICES:
                if s + "_cpu_ms" not in r:
                    continue
                w("| {} | {} | {} | {:.1f} | {:.1f} |".format(
                    s, fmt(num(r, s + "_cpu_us_per_req")),
                    fmt(num(r, s + "_cpu_ms")),
                    num(r, s + "_rss_before_kb", 0) / KIB_PER_MIB,
                    num(r, s + "_hwm_kb", 0) / KIB_PER_MIB))
        png = plot(name, args.data, args.plots, "{}: throughput and latency "
                   "percentiles".format(name))
        if png:
            rel = os.path.relpath(png, os.path.dirname(args.out))
            w("")
            w("![{} throughput over time and latency by percentile]({})"
              .format(name, rel))
        w("")

    if os.path.exists(args.notes):
        with open(args.notes, encoding="utf-8") as f:
            w(f.read().rstrip("\n"))
            w("")

    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
