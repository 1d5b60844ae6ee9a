#!/usr/bin/env python3
"""Issue 12's kill -9 campaign (docs/reliability.md): SIGKILL at random moments of
`slmrec apply finetune`, `slmrec run RECIPE`, `slmrec data prepare`, `slmrec sasrec` and a
data-parallel `mpirun -np 2 slmrec apply finetune` (one of its ranks killed, as a node that
dies; the job must end, not hang), a third of them timed
to the moment a temporary output (".NAME.tmp-…") appears, i.e. while a checkpoint, a stage
directory or a prepared dataset is being written. After each kill:

  * the output is either the previous good one, byte for byte, or the complete new one
    (apply, data prepare: an earlier output is replaced with --force), never anything else;
  * in a run directory every stage directory present is complete (its files equal the
    uninterrupted run's);
  * the same command with --resume (apply, run) or again (data prepare) finishes, and its
    result is bit-identical to the uninterrupted run's, with no debris left beside it.

Usage: scripts/fault-kill9.py [--trials 60] [--seed 1] [--commands apply,run,prepare,sasrec,mpi]
                              [--out runs/fault-kill9] [--bin .build/release/slmrec]
Writes OUT/results.json (every trial: command, when it was killed, what was found) and prints
a summary table. Exit status 1 if any trial failed.
"""
import argparse, hashlib, json, os, random, shutil, signal, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--trials", type=int, default=60)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--out", default="runs/fault-kill9")
ap.add_argument("--bin", default=".build/release/slmrec")
ap.add_argument("--commands", default="apply,run,prepare", help="which commands' trials, in turn")
a = ap.parse_args()
KINDS = a.commands.split(",")
for k in KINDS:
    if k not in ("apply", "run", "prepare", "sasrec", "mpi"):
        sys.exit(f"--commands: unknown command {k!r} (apply, run, prepare, sasrec, mpi)")
BIN = os.path.abspath(a.bin)
W = os.path.abspath(a.out)
rng = random.Random(a.seed)


def sh(args, check=True, **kw):
    r = subprocess.run([BIN] + args, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        sys.exit(f"setup failed: slmrec {' '.join(args)}\n{r.stderr}")
    return r


def tree_hash(path, only=None):
    """sha256 of every file under path (relative name + bytes); `only`: file names to include."""
    h = hashlib.sha256()
    if not os.path.exists(path):
        return None
    if os.path.isfile(path):
        return hashlib.sha256(open(path, "rb").read()).hexdigest()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for f in sorted(files):
            if only and f not in only:
                continue
            p = os.path.join(root, f)
            h.update(os.path.relpath(p, path).encode() + b"\0" + open(p, "rb").read())
    return h.hexdigest()


WEIGHTS = {"model.safetensors", "config.json", "ellmrec.json", "adapter_model.safetensors", "adapter_config.json"}


def debris(parent):
    return sorted(n for n in os.listdir(parent) if ".tmp-" in n or ".old-" in n)


# ---- setup: data, a checkpoint, the uninterrupted references ----
shutil.rmtree(W, ignore_errors=True)
os.makedirs(W)
r = random.Random(7)
with open(f"{W}/raw.txt", "w") as f:
    for u in range(1, 2001):
        s, n = r.randrange(60), 6 + r.randrange(20)
        f.write(f"{u} " + " ".join(str((s + i * (1 + u % 4)) % 60 + 1) for i in range(n)) + "\n")
# data prepare's trials read a larger file (60,000 users), so that a kill lands inside it.
with open(f"{W}/big.txt", "w") as f:
    for u in range(1, 60001):
        s, n = r.randrange(3000), 6 + r.randrange(30)
        f.write(f"{u} " + " ".join(str((s + i * (1 + u % 7)) % 3000 + 1) for i in range(n)) + "\n")
prep = lambda out, neg, force=False, raw="raw": ["data", "prepare", "--input", f"{W}/{raw}.txt", "--output", out, "--format", "sequences",
                                      "--kcore", "1", "--negatives", str(neg)] + (["--force"] if force else [])
sh(prep(f"{W}/data", 20))
if "prepare" in KINDS:
    sh(prep(f"{W}/ref-data", 20, raw="big"))
    sh(prep(f"{W}/old-data", 7, raw="big"))
    REF_DATA, OLD_DATA = tree_hash(f"{W}/ref-data"), tree_hash(f"{W}/old-data")
sh(["init", "--output", f"{W}/ck", "--data", f"{W}/data", "--layers", "4", "--hidden", "64", "--intermediate", "96",
    "--heads", "4", "--item-dim", "16", "--prompt-length", "2", "--seed", "3"])
OPTS = (f'{{data: "{W}/data", max_steps: 120, batch_size: 32, lr: 0.002, checkpoint_every: 5, valid_every: 40, '
        f'valid_users: 200, patience: 0}}')
apply = lambda out, seed, *extra: ["apply", "finetune", "--input", f"{W}/ck", "--output", out, "--options", OPTS,
                                   "--seed", str(seed)] + list(extra)
T = {}
if "apply" in KINDS or "mpi" in KINDS:
    t0 = time.time(); sh(apply(f"{W}/ref-apply", 7)); T["apply"] = time.time() - t0
    sh(apply(f"{W}/old-apply", 8))
    REF_APPLY, OLD_APPLY = tree_hash(f"{W}/ref-apply", WEIGHTS), tree_hash(f"{W}/old-apply", WEIGHTS)
# Data-parallel: two ranks of one thread each; the reference is an uninterrupted 2-rank run
# (a 2-rank sum is exact to reorder, so a resumed 2-rank run must match it bit for bit).
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "OPENBLAS_NUM_THREADS=1"]
mpi_apply = lambda out, *extra: MPIRUN + [BIN] + apply(out, 7, *extra)
if "mpi" in KINDS:
    t0 = time.time()
    r = subprocess.run(mpi_apply(f"{W}/ref-mpi"), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"setup failed: mpirun apply\n{r.stderr}")
    T["mpi"] = time.time() - t0
    REF_MPI = tree_hash(f"{W}/ref-mpi", WEIGHTS)
SASREC_FILES = {"sasrec.safetensors", "item_embeddings.safetensors", "config.json"}
sasrec = lambda out, seed, *extra: ["sasrec", "--data", f"{W}/data", "--output", out, "--hidden", "32", "--epochs", "14",
                                    "--patience", "100", "--batch-size", "64", "--valid-users", "300", "--seed", str(seed),
                                    "--threads", "1", "--quiet"] + list(extra)
if "sasrec" in KINDS:
    t0 = time.time(); sh(sasrec(f"{W}/ref-sasrec", 5)); T["sasrec"] = time.time() - t0
    sh(sasrec(f"{W}/old-sasrec", 6))
    REF_SASREC, OLD_SASREC = tree_hash(f"{W}/ref-sasrec", SASREC_FILES), tree_hash(f"{W}/old-sasrec", SASREC_FILES)
with open(f"{W}/r.json5", "w") as f:
    f.write(f"""{{ inputs: {{ base: "{W}/ck" }}, evaluate: {{ data: "{W}/data", split: "test", candidates: "both", users: 300 }},
  stages: [
    {{ name: "teacher", pass: "finetune", input: "base", options: {{ data: "{W}/data", max_steps: 80, batch_size: 32, lr: 0.002,
       checkpoint_every: 5, valid_every: 40, valid_users: 200, patience: 0 }} }},
    {{ name: "pruned", pass: "prune-layers", input: "teacher", options: {{ strategy: "keep-first", keep: 2 }} }},
    {{ name: "student", pass: "layerwise-kd", input: "pruned", references: {{ teacher: "teacher" }},
       options: {{ data: "{W}/data", max_steps: 40, batch_size: 32, lr: 0.002, checkpoint_every: 5, valid_every: 0, valid_users: 0,
                  patience: 0, blocks: 2 }} }},
    {{ name: "ship", pass: "quantize-int8", input: "student" }} ],
  compare: ["teacher", "pruned", "student", "ship"] }}
""")
STAGES = ["teacher", "pruned", "student", "ship"]
runcmd = lambda out, *extra: ["run", f"{W}/r.json5", "--output", out, "--skip-report-timing"] + list(extra)
if "run" in KINDS:
    t0 = time.time(); sh(runcmd(f"{W}/ref-run")); T["run"] = time.time() - t0
    REF_STAGES = {s: tree_hash(f"{W}/ref-run/{s}/checkpoint", WEIGHTS) for s in STAGES}
if "prepare" in KINDS:
    t0 = time.time(); sh(prep(f"{W}/t-data", 20, raw="big")); T["prepare"] = time.time() - t0
    shutil.rmtree(f"{W}/t-data")
print("uninterrupted: " + ", ".join(f"{k} {v:.2f} s" for k, v in T.items()), flush=True)


def children(pid):
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def rank_of(pid):
    """The MPI rank of process pid (Open MPI puts it in the environment), or None."""
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return None
    v = next((e.split(b"=", 1)[1] for e in env if e.startswith(b"OMPI_COMM_WORLD_RANK=")), None)
    return int(v) if v is not None else None


def kill_during(args, duration, mode, watch_parent, watch_name, writes=1, rank=None):
    """Starts slmrec ARGS, kills it with SIGKILL at a random time in [0, 1.1 duration] or
    (mode "writing") when a temporary sibling of watch_name appears in watch_parent. Returns
    (seconds after start it was killed or None if it finished first, exit status). With
    `rank` (mpirun ARGS), the victim is that rank's process, and the exit status is mpirun's after it noticed (None if it hung 60 s)."""
    p = subprocess.Popen(args if rank is not None else [BIN] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.time()
    deadline = start + (rng.uniform(0, 1.1 * duration) if mode == "random" else 3 * duration + 5)
    skip = rng.randrange(writes) if mode == "writing" else 0   # which of the command's `writes` writes to hit
    seen = set()
    while p.poll() is None:
        now = time.time()
        if mode == "writing":
            try:
                tmps = {n for n in os.listdir(watch_parent) if n.startswith(f".{watch_name}") and ".tmp-" in n}
            except FileNotFoundError:
                tmps = set()
            new = tmps - seen
            if new:
                seen |= new
                if skip == 0:
                    time.sleep(rng.uniform(0, 0.02))
                    break
                skip -= 1
        if now >= deadline:
            break
        time.sleep(0.0005 if mode == "writing" else 0.002)
    if p.poll() is None:
        when = time.time() - start
        if rank is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            return when, -9
        pid = next((c for c in children(p.pid) if rank_of(c) == rank), None)
        if pid is None:   # not yet launched, or already gone: kill the launcher
            p.send_signal(signal.SIGKILL); p.wait()
            return when, "mpirun killed (rank not running)"
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        try:
            rc = p.wait(timeout=60)
            kill_during.ended = time.time() - killed   # how long the job took to notice and end
            return when, rc
        except subprocess.TimeoutExpired:
            for c in children(p.pid):
                os.kill(c, signal.SIGKILL)
            p.kill(); p.wait()
            return when, None
    return None, p.returncode


results = []
kinds = [k for k in KINDS for _ in range(3)]
for i in range(a.trials):
    kind = kinds[i % len(kinds)]
    mode = "writing" if i % 3 == 2 else "random"
    rec = {"trial": i + 1, "command": kind, "mode": mode}
    problems = []
    if kind == "run":
        out = f"{W}/t-run"
        shutil.rmtree(out, ignore_errors=True)
        # A run writes its stages inside the run directory: watch it for a stage's temporary.
        when, rc = kill_during(runcmd(out), T["run"], mode, out, "", writes=4)
        complete = []
        for s in STAGES:
            d = f"{out}/{s}"
            if os.path.exists(d):
                if not os.path.exists(f"{d}/stage.json") or tree_hash(f"{d}/checkpoint", WEIGHTS) != REF_STAGES[s]:
                    problems.append(f"stage directory {s} is present but not the complete stage")
                complete.append(s)
        rec.update(killed_at=when, exit=rc, complete_stages=complete)
        resumed = subprocess.run([BIN] + runcmd(out, "--resume"), capture_output=True, text=True)
        if resumed.returncode != 0:
            problems.append(f"--resume failed: {resumed.stderr.strip()[-300:]}")
        same = all(tree_hash(f"{out}/{s}/checkpoint", WEIGHTS) == REF_STAGES[s] for s in STAGES)
        rec["resumed_bit_identical"] = same
        if not same:
            problems.append("a resumed stage differs from the uninterrupted run")
        left = [n for n in os.listdir(out) if ".tmp-" in n or ".old-" in n] + ([".work"] if os.path.exists(f"{out}/.work") else [])
        if left:
            problems.append(f"debris left in the run directory: {left}")
    elif kind in ("apply", "sasrec", "mpi"):
        # One output, replaced with --force over an earlier one; --resume continues.
        out, victim = f"{W}/t-{kind}", None
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(f"{W}/old-sasrec" if kind == "sasrec" else f"{W}/old-apply", out)
        for d in debris(W):
            shutil.rmtree(f"{W}/{d}", ignore_errors=True)
        shutil.rmtree(f"{W}/.t-{kind}.work", ignore_errors=True)
        if kind == "apply":
            files, ref, old = WEIGHTS, REF_APPLY, OLD_APPLY
            when, rc = kill_during(apply(out, 7, "--force"), T["apply"], mode, W, f"t-{kind}", writes=2)
            again = [BIN] + apply(out, 7, "--force", "--resume")
        elif kind == "sasrec":
            files, ref, old = SASREC_FILES, REF_SASREC, OLD_SASREC
            when, rc = kill_during(sasrec(out, 5, "--force"), T["sasrec"], mode, W, f"t-{kind}")
            again = [BIN] + sasrec(out, 5, "--force", "--resume")
        else:
            files, ref, old = WEIGHTS, REF_MPI, OLD_APPLY
            victim = rng.randrange(2)
            when, rc = kill_during(mpi_apply(out, "--force"), T["mpi"], mode, W, f"t-{kind}", writes=2, rank=victim)
            if when is not None and rc is None:
                problems.append("mpirun did not end within 60 s of a rank's death")
            again = mpi_apply(out, "--force", "--resume")
        h = tree_hash(out, files)
        state = "previous" if h == old else "new" if h == ref else "OTHER"
        if state == "OTHER":
            problems.append("the output is neither the previous nor the new one")
        rec.update(killed_at=when, exit=rc, after_kill=state)
        if victim is not None and when is not None:
            rec.update(killed_rank=victim, job_ended_after=getattr(kill_during, "ended", None))
            kill_during.ended = None
        resumed = subprocess.run(again, capture_output=True, text=True)
        if resumed.returncode != 0:
            problems.append(f"--resume failed: {resumed.stderr.strip()[-300:]}")
        final = tree_hash(out, files)
        rec["resumed_bit_identical"] = final == ref
        if final != ref:
            problems.append("the resumed output differs from the uninterrupted one")
        left = [d for d in debris(W) if f"t-{kind}" in d] + ([f".t-{kind}.work"] if os.path.exists(f"{W}/.t-{kind}.work") else [])
        if left:
            problems.append(f"debris left: {left}")
    else:
        out = f"{W}/t-data"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(f"{W}/old-data", out)
        when, rc = kill_during(prep(out, 20, force=True, raw="big"), T["prepare"], mode, W, "t-data")
        h = tree_hash(out)
        state = "previous" if h == OLD_DATA else "new" if h == REF_DATA else "OTHER"
        if state == "OTHER":
            problems.append("the prepared dataset is neither the previous nor the new one")
        rec.update(killed_at=when, exit=rc, after_kill=state)
        again = subprocess.run([BIN] + prep(out, 20, force=True, raw="big"), capture_output=True, text=True)
        if again.returncode != 0:
            problems.append(f"the rerun failed: {again.stderr.strip()[-300:]}")
        rec["rerun_identical"] = tree_hash(out) == REF_DATA
        if tree_hash(out) != REF_DATA:
            problems.append("the rerun's dataset differs")
        left = [d for d in debris(W) if "t-data" in d]
        if left:
            problems.append(f"debris left: {left}")
    rec["problems"] = problems
    rec["ok"] = not problems
    results.append(rec)
    print(f"trial {i + 1:3d} {kind:7s} {mode:7s} killed at {'-' if rec.get('killed_at') is None else '%.3f s' % rec['killed_at']:>9s}: "
          f"{'ok' if not problems else 'FAILED: ' + '; '.join(problems)}"
          f"{'' if 'after_kill' not in rec else '  (output after the kill: ' + rec['after_kill'] + ')'}"
          f"{'' if 'complete_stages' not in rec else '  (complete stages after the kill: ' + (','.join(rec['complete_stages']) or 'none') + ')'}",
          flush=True)

commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
summary = {"commit": commit, "cpu": cpu, "seed": a.seed, "trials": len(results), "failed": sum(not r["ok"] for r in results),
           "commands": KINDS, "uninterrupted_seconds": T, "results": results}
json.dump(summary, open(f"{W}/results.json", "w"), indent=1)
print("\n| command | trials | killed (not finished first) | output after the kill: previous / new / other | resumed bit-identical | failed |")
print("|---|---:|---:|---|---:|---:|")
for k in KINDS:
    rs = [r for r in results if r["command"] == k]
    killed = sum(r.get("killed_at") is not None for r in rs)
    states = "—" if k == "run" else " / ".join(str(sum(r.get("after_kill") == s for r in rs)) for s in ["previous", "new", "OTHER"])
    ident = sum(r.get("resumed_bit_identical", r.get("rerun_identical", False)) for r in rs)
    print(f"| {k} | {len(rs)} | {killed} | {states} | {ident} | {sum(not r['ok'] for r in rs)} |")
ends = [r["job_ended_after"] for r in results if r.get("job_ended_after") is not None]
if ends:
    print(f"\nmpi: after a rank was killed, mpirun ended the job in {min(ends):.2f}–{max(ends):.2f} s (median {sorted(ends)[len(ends) // 2]:.2f} s)")
print(f"\ncommit {commit}, {cpu}, seed {a.seed}: {summary['failed']} of {len(results)} trials failed")
sys.exit(1 if summary["failed"] else 0)
