"""The distributed search's machinery, measured: throughput with 1-8 workers and the chief's overhead.

    .venv/bin/python benchmarks/distributed.py                    # paper scale: 20,000 simulated trials
    .venv/bin/python benchmarks/distributed.py --simulated 2000   # quicker

Everything goes through the real chief (`tuner.distributed.chief` serving `PPOOracle` over
keras-tuner's gRPC service) and real worker clients; only the children are replaced by
trials of fixed cost (`tuner.distributed.fixed_cost`: a sleep), so what is measured is
the distribution, not training.

1. Throughput: a chief and N worker processes (N = 1, 2, 4, 8), each worker running
   `--rounds` trials of `--seconds` s; trials/s over the span from the first trial handed
   out to the last one ended (the chief's clock), and the speed-up over one worker
   (target: 4 workers >= 3.6x).
2. Chief overhead per trial: server-side time of CreateTrial + EndTrial (oracle, files,
   and the PPO update that every 20th EndTrial runs), for `--simulated` zero-cost trials
   from 8 client threads, in the paper's space (`--num-blocks 5`: the reward cache rarely
   answers a proposal, so every simulated trial is a real create + end); median and mean at the start (trials 50-150) and at the end of
   the history (the last 100), to show whether it grows with the number of trials
   (target: < 20 ms and flat).
3. The chief's cost with the search token and with TLS (+ token) beside plaintext, in
   interleaved rounds: the chief process's whole CPU time per trial (gRPC, TLS, the token
   check, the servicer, PPO updates; the servicer's own time cannot show TLS or the
   interceptor, which run before it), the token check's own time per call, and the
   client's round trip. Only this section:

       .venv/bin/python benchmarks/distributed.py --skip throughput history
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra):
    base = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {**base, "PYTHONPATH": REPO, "PYTHONUNBUFFERED": "1", **extra}


def fixed_cost_args(directory, max_trials, seconds, extra=()):
    return [sys.executable, "-m", "tuner.distributed.fixed_cost", "--directory", directory, "--max-trials",
            str(max_trials), "--seconds", str(seconds), "--controller-batch", "20", "--lease-timeout", "300",
            *extra]


def start_chief(directory, port, max_trials, seconds, stats, extra=()):
    log = open(os.path.join(directory, "chief.log"), "w")
    process = subprocess.Popen(fixed_cost_args(directory, max_trials, seconds, [*extra, "--stats-file", stats]),
                               env=env(KERASTUNER_TUNER_ID="chief", KERASTUNER_ORACLE_IP="127.0.0.1",
                                       KERASTUNER_ORACLE_PORT=str(port)), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while "serving the oracle" not in open(os.path.join(directory, "chief.log")).read():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the chief did not start: " + open(os.path.join(directory, "chief.log")).read()[-2000:])
        time.sleep(0.2)
    return process


def throughput(workers: int, rounds: int, seconds: float) -> dict:
    directory = tempfile.mkdtemp(prefix=f"dist-bench-{workers}-")
    try:
        port, stats = free_port(), os.path.join(directory, "stats.json")
        trials = workers * rounds
        chief = start_chief(directory, port, trials, seconds, stats, ["--insecure"])
        go = os.path.join(directory, "go")
        procs = []
        for i in range(workers):
            ready = os.path.join(directory, f"ready-{i}")
            procs.append((ready, subprocess.Popen(
                fixed_cost_args(directory, trials, seconds, ["--insecure", "--ready-file", ready, "--go-file", go]),
                env=env(KERASTUNER_TUNER_ID=f"bench-worker-{i}", KERASTUNER_ORACLE_IP="127.0.0.1",
                        KERASTUNER_ORACLE_PORT=str(port), CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow"),
                stdout=open(os.path.join(directory, f"worker-{i}.log"), "w"), stderr=subprocess.STDOUT)))
        while not all(os.path.exists(r) for r, _ in procs):
            if any(p.poll() is not None for _, p in procs):
                raise RuntimeError("a worker died before the start")
            time.sleep(0.1)
        open(go, "w").close()
        for _, p in procs:
            p.wait(900)
        chief.wait(300)
        with open(stats) as f:
            result = json.load(f)
        return {"workers": workers, "trials": trials, "span": result["span_seconds"],
                "per_s": trials / result["span_seconds"],
                "overhead_ms": 1000 * statistics.median(
                    [c + e for c, e in zip(result["create_seconds"], result["end_seconds"])])}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _client_factory(port, mode, certs, num_blocks):
    from tuner.distributed import auth
    from tuner.distributed.worker import ChiefClient
    from tuner.space import SearchSpace

    space = SearchSpace(num_blocks=num_blocks)
    settings = {"strategy": "ppo", "search_space": space.to_dict(), "seconds": 0.0, "fail_every": 0}
    token = "b" * 40
    options = {}
    if mode == "token":
        options = auth.Auth(token=token).client_options()
    elif mode == "tls":
        options = auth.Auth(token=token, tls_ca=certs["ca.pem"]).client_options()
    elif mode == "insecure":
        options = auth.Auth(insecure=True).client_options()

    def make(tuner_id):
        import keras_tuner

        local = types.SimpleNamespace(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=None)
        return ChiefClient(local, settings, host="127.0.0.1", port=port, tuner_id=tuner_id, chief_timeout=600,
                           **options)

    return make, token


def run_simulation(trials: int, threads: int, mode: str, certs=None, num_blocks: int = 5) -> dict:
    directory = tempfile.mkdtemp(prefix=f"dist-sim-{mode}-")
    try:
        port, stats = free_port(), os.path.join(directory, "stats.json")
        make, token = _client_factory(port, mode, certs, num_blocks)
        extra = {"insecure": ["--insecure"], "token": [], "tls": ["--tls-cert", certs["server.pem"] if certs else "",
                                                                    "--tls-key", certs["server.key"] if certs else ""]}[mode]
        os.environ["NASNET_SEARCH_TOKEN"] = token
        try:
            chief = start_chief(directory, port, trials, 0.0, stats, [*extra, "--num-blocks", str(num_blocks)])
        finally:
            del os.environ["NASNET_SEARCH_TOKEN"]
        wall = []

        def worker(i):
            client = make(f"sim-{i}")
            while True:
                start = time.perf_counter()
                trial = client.create_trial(client.tuner_id)
                if trial.status == "STOPPED":
                    return
                if trial.status != "RUNNING":
                    continue
                from tuner.distributed.fixed_cost import score_of

                client.update_trial(trial.trial_id, {"val_accuracy": score_of(trial.hyperparameters.values)})
                trial.status = "COMPLETED"
                client.end_trial(trial)
                wall.append(time.perf_counter() - start)

        started = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        chief.wait(300)
        with open(stats) as f:
            result = json.load(f)
        per_trial = [c + e for c, e in zip(result["create_seconds"], result["end_seconds"])]
        per_trial_cpu = [c + e for c, e in zip(result["create_cpu_seconds"], result["end_cpu_seconds"])]
        from tuner.state_journal import JOURNAL_FILE, read_state

        project = os.path.join(directory, "ppo")
        files = {"state_bytes": len(json.dumps(read_state(project))),
                 "snapshot_bytes": os.path.getsize(os.path.join(project, "oracle.json")),
                 "journal_bytes": os.path.getsize(os.path.join(project, JOURNAL_FILE))}
        ends = max(1, result["timed_ends"])
        calls = result.get("interceptor_calls", 0)
        return {"mode": mode, "trials": len(per_trial), "elapsed": elapsed, "per_trial": per_trial,
                "per_trial_cpu": per_trial_cpu,
                # the chief's whole process (gRPC, TLS, interceptor, servicer, PPO updates), first create to last end
                "chief_cpu_ms": 1000 * result["span_cpu_seconds"] / ends,
                "interceptor_us": 1e6 * result.get("interceptor_seconds", 0.0) / calls if calls else 0.0,
                "interceptor_calls_per_trial": calls / ends,
                "client_ms": 1000 * statistics.median(wall), "unauthenticated": result["unauthenticated"], **files}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def make_certs(directory: str) -> dict:
    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=bench CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "server.pem", "-days", "1", "-extfile", "server.ext")
    return {name: os.path.join(directory, name) for name in ("ca.pem", "server.pem", "server.key")}


def spread(values, digits=2) -> str:
    """'median [min-max]' of a few runs."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def window(values, start, stop):
    part = values[start:stop]
    return 1000 * statistics.median(part), 1000 * statistics.fmean(part)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=4, help="trials per worker in the throughput runs")
    parser.add_argument("--seconds", type=float, default=1.0, help="cost of one throughput trial")
    parser.add_argument("--simulated", type=int, default=20000, help="zero-cost trials at 8 workers")
    parser.add_argument("--num-blocks", type=int, default=5, help="blocks per cell of the simulated search space")
    parser.add_argument("--auth-trials", type=int, default=400, help="trials per run in the token/TLS comparison")
    parser.add_argument("--auth-repeats", type=int, default=3,
                        help="rounds of the token/TLS comparison (each runs plaintext, token, TLS in turn)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["throughput", "history", "auth"],
                        help="sections not to run (e.g. --skip throughput history: only the token/TLS comparison)")
    args = parser.parse_args(argv)
    print(f"# benchmarks/distributed.py on {os.cpu_count()} CPU core(s), load average "
          f"{os.getloadavg()[0]:.1f} at start", flush=True)
    if "throughput" not in args.skip:
        rows = [throughput(n, args.rounds, args.seconds) for n in args.workers]
        base = rows[0]["per_s"]
        print(f"\n## Throughput, {args.seconds:g} s trials, {args.rounds} per worker (target: 4 workers >= 3.6x)")
        print("| workers | trials | span s | trials/s | speed-up vs 1 | chief create+end ms (median) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['workers']} | {r['trials']} | {r['span']:.2f} | {r['per_s']:.3f} | {r['per_s'] / base:.2f}x "
                  f"| {r['overhead_ms']:.1f} |", flush=True)
    if "history" not in args.skip:
        r = run_simulation(args.simulated, 8, "insecure", num_blocks=args.num_blocks)
        n = len(r["per_trial"])
        early, late = window(r["per_trial"], 50, 150), window(r["per_trial"], n - 100, n)
        print(f"\n## Chief overhead per trial (CreateTrial + EndTrial, incl. the PPO update every 20), "
              f"{n} simulated trials at 8 workers, {r['elapsed']:.0f} s (target < 20 ms, flat)")
        print("| trials | wall median ms | wall mean ms (incl. PPO updates) | chief CPU median ms | chief CPU mean ms |")
        print("|---|---|---|---|---|")
        step = max(1, n // 5)
        cpu = r["per_trial_cpu"]
        for start in [50] + list(range(step, n, step)) + [n - 100]:
            stop = min(n, start + 100)
            med, mean = window(r["per_trial"], start, stop)
            cmed, cmean = window(cpu, start, stop)
            label = "last 100" if start == n - 100 else f"{start}-{stop}"
            print(f"| {label} | {med:.1f} | {mean:.1f} | {cmed:.1f} | {cmean:.1f} |")
        print(f"ratio last/early, chief CPU median: {window(cpu, n - 100, n)[0] / window(cpu, 50, 150)[0]:.2f}; "
              f"mean over all {n} trials: wall {1000 * statistics.fmean(r['per_trial']):.1f} ms, chief CPU "
              f"{1000 * statistics.fmean(cpu):.1f} ms")
        print(f"ratio last/early (median): {late[0] / early[0]:.2f}; client round trip (create+update+end) median "
              f"{r['client_ms']:.1f} ms", flush=True)
        print(f"chief process CPU per trial, all threads (gRPC, heartbeats, servicer, PPO updates), first create to "
              f"last end: {r['chief_cpu_ms']:.1f} ms; load average {os.getloadavg()[0]:.1f}", flush=True)
        print(f"oracle state after {n} trials: {r['state_bytes'] / 1e6:.2f} MB as one JSON (what keras-tuner alone "
              f"rewrites on every call); on disk: oracle.json {r['snapshot_bytes'] / 1e6:.2f} MB + journal "
              f"{r['journal_bytes'] / 1e6:.2f} MB", flush=True)
    if "auth" not in args.skip:
        certs_dir = tempfile.mkdtemp(prefix="dist-certs-")
        modes = ("insecure", "token", "tls")
        try:
            certs = make_certs(certs_dir)
            print(f"\n## Chief overhead with the search token and TLS: {args.auth_trials} simulated trials at 8 "
                  f"workers per run, {args.auth_repeats} rounds interleaved (plaintext, token, TLS+token)", flush=True)
            runs: dict[str, list] = {mode: [] for mode in modes}
            for _ in range(args.auth_repeats):
                for mode in modes:
                    runs[mode].append(run_simulation(args.auth_trials, 8, mode, certs, num_blocks=args.num_blocks))
            print("Chief CPU = the chief's whole process (all threads: gRPC, TLS, the token interceptor, the "
                  "servicer, the PPO update every 20 trials) from the first trial's creation to the last end, per "
                  "trial; servicer = the create + end handlers' own wall time (after the interceptor, without gRPC "
                  "or TLS); ratios are per round against that round's plaintext run. Median [min-max] over rounds.")
            print("| mode | chief CPU ms/trial | vs plaintext | servicer create+end median ms | token check us/call "
                  "(calls/trial) | client round trip median ms | vs plaintext |")
            print("|---|---|---|---|---|---|---|")
            for mode in modes:
                rows, base = runs[mode], runs["insecure"]
                cpu = [r["chief_cpu_ms"] for r in rows]
                client = [r["client_ms"] for r in rows]
                servicer = [1000 * statistics.median(r["per_trial"]) for r in rows]
                check = [r["interceptor_us"] for r in rows]
                per_trial_calls = statistics.median(r["interceptor_calls_per_trial"] for r in rows)
                cpu_ratio = [r["chief_cpu_ms"] / b["chief_cpu_ms"] for r, b in zip(rows, base)]
                client_ratio = [r["client_ms"] / b["client_ms"] for r, b in zip(rows, base)]
                print(f"| {mode} | {spread(cpu)} | {spread(cpu_ratio)}x | {spread(servicer)} | "
                      f"{spread(check, 1) if per_trial_calls else '-'} ({per_trial_calls:.1f}) | {spread(client)} | "
                      f"{spread(client_ratio)}x |", flush=True)
            print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        finally:
            shutil.rmtree(certs_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
