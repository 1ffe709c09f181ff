#!/usr/bin/env python3
"""Helper for benchmarks/onnx_vs_conveyor.sh: ONNX conversion, check, ORT timing, report.

Run it with the benchmark venv's Python (benchmarks/.venv/bin/python). Subcommands:

  convert  tf_keras JSON config + legacy Keras 2 weights file -> ONNX (skipped if the file exists)
  verify   run the ONNX model on ref/cat.input.f32 and compare with ref/cat.probs.f32
  time     time ONNX Runtime (CPU EP) at several batch sizes, write a JSON result
  report   Markdown tables from the ORT JSONs and `conveyor bench --json` outputs of all rounds
  run      run one command (conveyor bench), measuring the CPU load of other processes meanwhile

The ORT JSON has the shape of `conveyor bench --json`, with extra keys:
  {"engine": "onnxruntime", "threads": 2, "model": "...", "results": [
     {"batch": 1, "runs": 120, "ms_per_batch": {"min":..,"median":..,"max":..},
      "ms_per_image":.., "images_per_second":.., "gflops":.., "max_abs_diff_vs_ref":..}, ...]}

report takes the runs of every round (R = round number, 1..N; the driver interleaves ORT and conveyor):
  --ort R=PATH                   ORT JSON of round R (one per round)
  --conveyor R:KERNEL=PATH       stdout of `conveyor bench --json` with KERNEL in round R
  --conveyor R:KERNEL=!MESSAGE   or why that run has no figures
  --load R:KERNEL=FRACTION       other processes' CPU share during that conveyor run (from `run`)
Per batch size and kernel, the summary ratio is the median over the rounds of the per-round ratio
conveyor ms/image / ORT ms/image. It exits 3 when any conveyor run has no figures.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

IMAGE_SIZE = 299
NUM_CLASSES = 1000


def parse_batches(text):
    try:
        batches = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad batch list {text!r}; expected e.g. 1,4,16")
    if not batches or any(b < 1 for b in batches):
        raise argparse.ArgumentTypeError(f"bad batch list {text!r}; expected e.g. 1,4,16")
    return batches


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# convert
# --------------------------------------------------------------------------------------------

def cmd_convert(args):
    if os.path.exists(args.out) and not args.force:
        log(f"[convert] {args.out} exists; skipping conversion (use --force or delete it to redo)")
        return 0
    # Legacy Keras 2 (tf_keras) is what wrote the fixture; tf2onnx.from_keras wants it too.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import numpy as np
    import tensorflow as tf
    import tf_keras
    import tf2onnx

    t0 = time.perf_counter()
    with open(args.config) as f:
        model = tf_keras.models.model_from_json(f.read())
    model.load_weights(args.weights)  # legacy HDF5 weights-only file, loaded by layer order
    log(f"[convert] loaded {model.name}: {len(model.layers)} layers, "
        f"{model.count_params():,} parameters ({time.perf_counter() - t0:.1f} s)")

    # Sanity check of the Keras model itself before converting it.
    x = np.fromfile(os.path.join(args.ref_dir, "cat.input.f32"), np.float32)
    x = x.reshape(1, IMAGE_SIZE, IMAGE_SIZE, 3)
    ref = np.fromfile(os.path.join(args.ref_dir, "cat.probs.f32"), np.float32)
    keras_diff = float(np.abs(model(x, training=False).numpy()[0] - ref).max())
    log(f"[convert] tf_keras model vs ref/cat.probs.f32: max abs diff {keras_diff:.3g}")

    spec = (tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.float32, name="input"),)
    tmp = args.out + ".tmp"
    t0 = time.perf_counter()
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=args.opset, output_path=tmp)
    os.replace(tmp, args.out)  # never leave a half-written model behind under the final name
    log(f"[convert] wrote {args.out} (opset {args.opset}, dynamic batch) "
        f"in {time.perf_counter() - t0:.1f} s")
    meta = {
        "source_config": os.path.abspath(args.config),
        "source_weights": os.path.abspath(args.weights),
        "opset": args.opset,
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "keras_vs_ref_max_abs_diff": keras_diff,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(args.out + ".json", "w") as f:
        json.dump(meta, f, indent=2)
    return 0


# --------------------------------------------------------------------------------------------
# ORT helpers
# --------------------------------------------------------------------------------------------

def make_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def load_refs(ref_dir):
    """All ref images that have both an input and a probs file, as (name, input, probs)."""
    import numpy as np
    names = sorted(f[: -len(".input.f32")] for f in os.listdir(ref_dir) if f.endswith(".input.f32"))
    refs = []
    for n in names:
        probs_path = os.path.join(ref_dir, n + ".probs.f32")
        if not os.path.exists(probs_path):
            continue
        x = np.fromfile(os.path.join(ref_dir, n + ".input.f32"), np.float32)
        p = np.fromfile(probs_path, np.float32)
        refs.append((n, x.reshape(IMAGE_SIZE, IMAGE_SIZE, 3), p.reshape(NUM_CLASSES)))
    if not refs:
        raise SystemExit(f"no *.input.f32 / *.probs.f32 pairs in {ref_dir}")
    return refs


def verify_cat(session, ref_dir):
    import numpy as np
    x = np.fromfile(os.path.join(ref_dir, "cat.input.f32"), np.float32)
    x = x.reshape(1, IMAGE_SIZE, IMAGE_SIZE, 3)
    ref = np.fromfile(os.path.join(ref_dir, "cat.probs.f32"), np.float32)
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    if y.shape != (1, NUM_CLASSES):
        raise SystemExit(f"unexpected ONNX output shape {y.shape}")
    return float(np.abs(y[0] - ref).max()), int(y[0].argmax()), int(ref.argmax())


def model_flops(path):
    """FLOPs of one image (2 x multiply-adds of Conv and MatMul/Gemm; pools, BN, softmax ignored)."""
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
        m = onnx.load(path)
        d = m.graph.input[0].type.tensor_type.shape.dim[0]
        d.ClearField("dim_param")
        d.dim_value = 1
        m = shape_inference.infer_shapes(m)
        shapes = {}
        for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
            dims = [x.dim_value for x in vi.type.tensor_type.shape.dim]
            shapes[vi.name] = dims
        inits = {t.name: list(t.dims) for t in m.graph.initializer}
        shapes.update(inits)
        flops = 0
        for node in m.graph.node:
            if node.op_type == "Conv":
                w = shapes[node.input[1]]  # [Cout, Cin/group, kh, kw]
                out = shapes[node.output[0]]  # [N, Cout, H, W]
                flops += 2 * out[1] * out[2] * out[3] * w[1] * w[2] * w[3]
            elif node.op_type in ("MatMul", "Gemm"):
                a, b = shapes[node.input[0]], shapes[node.input[1]]
                trans_b = any(at.name == "transB" and at.i for at in node.attribute)
                n_out = b[0] if trans_b else b[-1]
                flops += 2 * a[0] * a[-1] * n_out
        return flops
    except Exception as e:  # FLOP count is informative only
        log(f"[time] could not count FLOPs: {e}")
        return None


class OtherLoad:
    """CPU time used by *other* processes while we measure, as a fraction of all CPUs.

    /proc/stat gives the machine's busy time; our own share is subtracted, from os.times() for
    this process (ORT runs in it) or from the children's rusage (a conveyor run under `run`).
    0.5 on a 2-core machine means one whole core was busy with something else.
    """

    def __init__(self, children=False):
        self.children = children
        self.hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stat():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v[:8]), v[3] + v[4]  # total (no guest), idle + iowait

    def _own(self):
        t = os.times()
        return (t.children_user + t.children_system) if self.children else (t.user + t.system)

    def __enter__(self):
        try:
            self.t0, self.i0 = self._stat()
        except (OSError, ValueError, IndexError):
            self.t0 = None
        self.own0 = self._own()
        return self

    def __exit__(self, *exc):
        self.fraction = None
        if self.t0 is None:
            return False
        t1, i1 = self._stat()
        total = t1 - self.t0
        if total > 0:
            own = (self._own() - self.own0) * self.hz
            self.fraction = max(0.0, min(1.0, ((total - (i1 - self.i0)) - own) / total))
        return False


def cmd_run(args):
    """Run a command (a conveyor bench) with stdout/stderr to files; record the other load meanwhile."""
    cmd = args.cmd_line[1:] if args.cmd_line[:1] == ["--"] else args.cmd_line
    with open(args.stdout, "w") as out, open(args.stderr, "w") as err, OtherLoad(children=True) as load:
        rc = subprocess.call(cmd, stdout=out, stderr=err)
    with open(args.load, "w") as f:
        f.write("nan\n" if load.fraction is None else f"{load.fraction:.4f}\n")
    return rc


# --------------------------------------------------------------------------------------------
# verify / time
# --------------------------------------------------------------------------------------------

def cmd_verify(args):
    import onnxruntime as ort
    s = make_session(args.onnx, args.threads)
    diff, top, ref_top = verify_cat(s, args.ref_dir)
    ok = diff <= args.tol
    print(f"ONNX vs ref/cat.probs.f32: max abs diff = {diff:.3e} (tolerance {args.tol:g}) "
          f"top-1 {top} (ref {ref_top}) -> {'OK' if ok else 'FAIL'}  [onnxruntime {ort.__version__}]",
          flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"max_abs_diff": diff, "tolerance": args.tol, "top1": top, "ref_top1": ref_top,
                       "ok": ok}, f, indent=2)
    return 0 if ok else 1


def cmd_time(args):
    import numpy as np
    import onnxruntime as ort

    refs = load_refs(args.ref_dir)
    session = make_session(args.onnx, args.threads)
    in_name = session.get_inputs()[0].name
    flops = model_flops(args.onnx)
    log(f"[time] onnxruntime {ort.__version__}, CPUExecutionProvider, intra_op_num_threads="
        f"{args.threads}, ORT_ENABLE_ALL; batches {args.batch}; >= {args.min_runs} runs and "
        f">= {args.min_seconds:g} s per batch after {args.warmup} warm-up runs"
        + (f"; {flops / 1e9:.2f} GFLOP/image" if flops else ""))

    results = []
    for batch in args.batch:
        picks = [refs[i % len(refs)] for i in range(batch)]  # cycle through the real ref images
        x = np.ascontiguousarray(np.stack([p[1] for p in picks]))
        expect = np.stack([p[2] for p in picks])
        feed = {in_name: x}

        # Warm-up; the first output is also checked against the references (batching sanity check).
        y = session.run(None, feed)[0]
        check = float(np.abs(y - expect).max())
        for _ in range(max(0, args.warmup - 1)):
            session.run(None, feed)

        times = []
        with OtherLoad() as load:
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                session.run(None, feed)
                times.append((time.perf_counter() - t0) * 1e3)
                elapsed = time.perf_counter() - start
                if len(times) >= args.max_runs:
                    break
                if len(times) >= args.min_runs and elapsed >= args.min_seconds:
                    break
        med = statistics.median(times)
        r = {
            "batch": batch,
            "runs": len(times),
            "ms_per_batch": {"min": min(times), "median": med, "max": max(times)},
            "ms_per_image": med / batch,
            "images_per_second": 1e3 * batch / med,
            "gflops": (flops * batch / (med / 1e3) / 1e9) if flops else None,
            "max_abs_diff_vs_ref": check,
            "other_cpu_fraction": load.fraction,
        }
        results.append(r)
        log(f"[time] ORT batch {batch:>3}: {r['runs']:>4} runs, ms/batch min {min(times):.1f} "
            f"median {med:.1f} max {max(times):.1f}; {r['ms_per_image']:.2f} ms/image, "
            f"{r['images_per_second']:.1f} img/s"
            + (f", {r['gflops']:.1f} GFLOP/s" if flops else "")
            + f"; probs max abs diff vs ref {check:.2e}"
            + (f"; other processes used {100 * load.fraction:.0f}% of the CPUs meanwhile"
               if load.fraction is not None and load.fraction > 0.02 else ""))

    out = {
        "engine": "onnxruntime",
        "version": ort.__version__,
        "provider": "CPUExecutionProvider",
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "threads": args.threads,
        "model": os.path.abspath(args.onnx),
        "gflop_per_image": flops / 1e9 if flops else None,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "results": results,
    }
    text = json.dumps(out, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def cpu_model():
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f in flags]
    return model or platform.processor() or "unknown", isa


def fmt(v, nd=2):
    return "n/a" if v is None else f"{v:.{nd}f}"


def load_json_output(path):
    """The JSON object printed by `conveyor bench --json`, tolerating log lines around it."""
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    for i, line in enumerate(lines):  # first line that opens an object and parses to the end
        if line.lstrip().startswith("{"):
            for j in range(len(lines), i, -1):
                try:
                    obj = json.loads("\n".join(lines[i:j]))
                    if isinstance(obj, dict):
                        return obj
                except ValueError:
                    continue
    raise ValueError("no JSON object in the output" if text.strip() else "empty output")


def round_spec(text):
    """--ort R=PATH -> (R, PATH)."""
    rnd, sep, value = text.partition("=")
    if not sep or not rnd.isdigit() or int(rnd) < 1 or not value:
        raise argparse.ArgumentTypeError(f"bad {text!r}; expected R=PATH with a round number R >= 1")
    return int(rnd), value


def round_kernel_spec(text):
    """--conveyor / --load R:KERNEL=VALUE -> (R, KERNEL, VALUE)."""
    head, sep, value = text.partition("=")
    rnd, colon, kernel = head.partition(":")
    if not sep or not colon or not kernel or not rnd.isdigit() or int(rnd) < 1:
        raise argparse.ArgumentTypeError(f"bad {text!r}; expected R:KERNEL=VALUE with a round number R >= 1")
    return int(rnd), kernel, value


class Run:
    """One timed run: ORT, or conveyor with one kernel, in one round. data is None when it failed."""

    def __init__(self, engine, rnd, data=None, error=None):
        self.engine = engine  # "ORT" or the kernel asked for
        self.round = rnd
        self.data = data
        self.error = error
        self.load = None  # other processes' CPU share over the whole run (conveyor)

    @property
    def is_ort(self):
        return self.engine == "ORT"

    def results(self):
        return (self.data or {}).get("results") or []

    def result(self, batch):
        return next((r for r in self.results() if r.get("batch") == batch), None)

    def ms_per_image(self, batch):
        """Median ms per batch / batch size."""
        r = self.result(batch)
        return r.get("ms_per_image") if r else None

    def fastest_ms_per_image(self, batch):
        """Fastest single timed batch / batch size."""
        best = ((self.result(batch) or {}).get("ms_per_batch") or {}).get("min")
        return None if best is None else best / batch

    def other_load(self, result):
        """Other processes' CPU share: conveyor's whole run, or ORT's per batch size."""
        return self.load if self.load is not None else result.get("other_cpu_fraction")


def load_conveyor_run(rnd, kernel, value):
    """value: the path of conveyor bench's stdout, or !message for a run that failed."""
    if value.startswith("!"):
        return Run(kernel, rnd, error=value[1:])
    try:
        data = load_json_output(value)
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ValueError("no 'results' list")
    except Exception as e:
        return Run(kernel, rnd, error=f"unreadable JSON from conveyor bench ({value}): {e}")
    return Run(kernel, rnd, data=data)


def parse_fraction(text):
    try:
        v = float(text)
    except ValueError:
        return None
    return None if v != v else v  # nan: not measured


def collect_runs(args):
    """rounds, ORT run per round, kernels (in the order given), conveyor run per (round, kernel)."""
    ort = {}
    for rnd, path in args.ort:
        try:
            with open(path) as f:
                ort[rnd] = Run("ORT", rnd, data=json.load(f))
        except (OSError, ValueError) as e:
            raise SystemExit(f"[report] cannot read the ORT JSON of round {rnd} ({path}): {e}")
    kernels, conv = [], {}
    for rnd, kernel, value in args.conveyor or []:
        if kernel not in kernels:
            kernels.append(kernel)
        conv[(rnd, kernel)] = load_conveyor_run(rnd, kernel, value)
    rounds = sorted(set(ort) | {rnd for rnd, _ in conv})
    no_ort = [r for r in rounds if r not in ort]
    if no_ort:
        raise SystemExit(f"[report] no --ort for round {', '.join(map(str, no_ort))}")
    for rnd in rounds:
        for k in kernels:
            conv.setdefault((rnd, k), Run(k, rnd, error="no conveyor result was given for this round"))
    for rnd, kernel, value in args.load or []:
        if (rnd, kernel) in conv:
            conv[(rnd, kernel)].load = parse_fraction(value)
    return rounds, ort, kernels, conv


def kernel_label(kernel, runs):
    """The kernel asked for, with the one(s) conveyor reports in brackets when they differ."""
    actual = []
    for run in runs:
        a = (run.data or {}).get("kernel")
        if a and a not in actual:
            actual.append(a)
    if actual and [a.lower() for a in actual] != [kernel.lower()]:
        return f"{kernel} ({'/'.join(actual)})"
    return kernel


def present(values):
    return [v for v in values if v is not None]


def median_of(values):
    v = present(values)
    return statistics.median(v) if v else None


def min_of(values):
    v = present(values)
    return min(v) if v else None


def ratio_of(conveyor_ms, ort_ms):
    return conveyor_ms / ort_ms if conveyor_ms is not None and ort_ms else None


def round_ratios(ort_runs, conv_runs, batch):
    """conveyor/ORT of the same round, per round (None where a figure is missing)."""
    return [ratio_of(c.ms_per_image(batch), o.ms_per_image(batch)) for o, c in zip(ort_runs, conv_runs)]


def summary_cells(ort_runs, conv_runs, batch):
    """conveyor ms/image, median ratio, range, rounds <= 1, ratio of fastest runs."""
    ratios = round_ratios(ort_runs, conv_runs, batch)
    have = present(ratios)
    if have:
        spread = f"{min(have):.3f}–{max(have):.3f}"
        wins = f"{sum(r <= 1 for r in have)}/{len(have)}"
        if len(have) < len(ratios):
            wins += f" ({len(ratios) - len(have)} n/a)"
    else:
        spread = wins = "n/a"
    fastest = ratio_of(min_of(c.fastest_ms_per_image(batch) for c in conv_runs),
                       min_of(o.fastest_ms_per_image(batch) for o in ort_runs))
    return [fmt(median_of(c.ms_per_image(batch) for c in conv_runs)), fmt(median_of(have), 3), spread,
            wins, fmt(fastest, 3)]


def md_table(head, rows, align="---:"):
    aligns = align if isinstance(align, list) else [align] * len(head)
    return (["| " + " | ".join(head) + " |", "| " + " | ".join(aligns) + " |"]
            + ["| " + " | ".join(row) + " |" for row in rows])


def run_notes(run, name, batches, threads, load_limit):
    """Notes about one run, without its round (merge_round_notes adds that)."""
    if run.data is None:
        return [f"{name}: {run.error}"]
    d, notes = run.data, []
    if d.get("threads") not in (None, threads):
        notes.append(f"{name} reports threads={d.get('threads')}, expected {threads}")
    if not run.is_ort and run.engine.lower() != "auto" and d.get("kernel") and \
            d["kernel"].lower() != run.engine.lower():
        notes.append(f"conveyor was asked for kernel `{run.engine}` but reports `{d['kernel']}`")
    missing = [b for b in batches if run.result(b) is None]
    if missing:
        notes.append(f"{name} reported no result for batch {', '.join(map(str, missing))}")
    loads = [(None, run.load)] if run.load is not None else \
        [(r.get("batch"), r.get("other_cpu_fraction")) for r in run.results()]
    for batch, frac in loads:
        if frac is not None and frac > load_limit:
            where = name if batch is None else f"{name} batch {batch}"
            notes.append(f"other processes used {100 * frac:.0f}% of the CPUs during {where}: "
                         "those figures are too slow; rerun on a quiet machine")
    return notes


def merge_round_notes(pairs):
    """[(round, note)] -> 'round 2: note' or 'rounds 1, 3: note', in order of first appearance."""
    by_note = {}
    for rnd, note in pairs:
        by_note.setdefault(note, []).append(rnd)
    out = []
    for note, rnds in by_note.items():
        rnds = sorted(set(rnds))
        out.append(f"round{'s' if len(rnds) > 1 else ''} {', '.join(map(str, rnds))}: {note}")
    return out


def detail_row(run, name, r):
    mpb = r.get("ms_per_batch") or {}
    frac = run.other_load(r)
    return [str(run.round), name, str(r.get("batch")), str(r.get("runs", "n/a")), fmt(mpb.get("min"), 1),
            fmt(mpb.get("median"), 1), fmt(mpb.get("max"), 1), fmt(r.get("images_per_second"), 1),
            fmt(r.get("gflops"), 1), "n/a" if frac is None else f"{100 * frac:.0f}%"]


def cmd_report(args):
    rounds, ort, kernels, conv = collect_runs(args)
    ort_runs = [ort[r] for r in rounds]
    conv_runs = {k: [conv[(r, k)] for r in rounds] for k in kernels}
    names = {k: f"conveyor {kernel_label(k, conv_runs[k])}" for k in kernels}
    batches = sorted({res.get("batch") for run in ort_runs for res in run.results()})
    ort_info = ort_runs[0].data

    cpu, isa = cpu_model()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# ONNX Runtime vs conveyor: InceptionV3 (299x299x3, float32)",
        "",
        f"- date: {now}",
        f"- CPU: {cpu} ({os.cpu_count()} logical cores; {', '.join(isa) or 'no AVX2'})",
        f"- threads: {args.threads}",
        f"- ONNX Runtime {ort_info.get('version')} (CPU EP, intra_op_num_threads={ort_info.get('threads')}, "
        f"ORT_ENABLE_ALL), model `{os.path.relpath(ort_info['model'], args.relative_to)}`",
    ]
    if args.git:
        lines.append(f"- conveyor source: {args.git}")
    if args.nice:
        lines.append(f"- timed phases run under `nice -n {args.nice}`")
    lines.append(f"- rounds: {len(rounds)}"
                 + (", interleaved ORT/conveyor (ABBA order)" if kernels and len(rounds) > 1 else ""))

    lines += ["", "ms/image is the median time of one batch divided by the batch size; in the summary, "
              "the median of that over the rounds."]
    if kernels:
        lines += ["ratio = conveyor / ORT of the same round (< 1 means conveyor is faster). Summary: ratio is "
                  "the median of the per-round ratios, range their min–max, rounds ≤ 1 counts the rounds in "
                  "which conveyor was at least as fast (out of the rounds with both figures); ratio of fastest "
                  "runs = conveyor's fastest single batch / ORT's fastest single batch over all rounds."]
    lines += ["", "Summary:", ""]
    head = ["batch", "ORT ms/image"]
    for k in kernels:
        head += [f"{names[k]} ms/image", "ratio (median)", "ratio range", "rounds ≤ 1", "ratio of fastest runs"]
    rows = []
    for b in batches:
        row = [str(b), fmt(median_of(o.ms_per_image(b) for o in ort_runs))]
        for k in kernels:
            row += summary_cells(ort_runs, conv_runs[k], b)
        rows.append(row)
    lines += md_table(head, rows)

    lines += ["", "Per round (ms/image):", ""]
    head = ["round", "batch", "ORT ms/image"]
    for k in kernels:
        head += [f"{names[k]} ms/image", "ratio"]
    rows = []
    for i, rnd in enumerate(rounds):
        for b in batches:
            o = ort_runs[i]
            row = [str(rnd), str(b), fmt(o.ms_per_image(b))]
            for k in kernels:
                c = conv_runs[k][i]
                row += [fmt(c.ms_per_image(b)), fmt(ratio_of(c.ms_per_image(b), o.ms_per_image(b)), 3)]
            rows.append(row)
    lines += md_table(head, rows)

    lines += ["", "Details (ms per batch over the timed runs):", ""]
    rows = []
    for i, rnd in enumerate(rounds):
        for run, name in [(ort_runs[i], "ORT")] + [(conv_runs[k][i], names[k]) for k in kernels]:
            rows += [detail_row(run, name, r) for r in run.results()]
    lines += md_table(["round", "engine", "batch", "runs", "min ms", "median ms", "max ms", "img/s",
                       "GFLOP/s", "other load"], rows, ["---:", "---"] + ["---:"] * 8)
    if ort_info.get("gflop_per_image"):
        lines += ["", f"ORT GFLOP/s counts {ort_info['gflop_per_image']:.2f} GFLOP per image "
                  "(2 x multiply-adds of Conv and MatMul/Gemm); conveyor's figure is its own. "
                  "Other load: share of all CPUs used by other processes during the timing "
                  "(ORT: per batch size; conveyor: its whole run)."]

    pairs = []
    for runs, name in [(ort_runs, "ORT")] + [(conv_runs[k], f"conveyor `{k}`") for k in kernels]:
        for run in runs:
            pairs += [(run.round, n) for n in run_notes(run, name, batches, args.threads, args.load_limit)]
    notes = merge_round_notes(pairs)
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)
        log(f"[report] written to {args.md}")
    return 3 if any(run.data is None for run in conv.values()) else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("convert", help="Keras config + weights -> ONNX")
    c.add_argument("--config", required=True)
    c.add_argument("--weights", required=True)
    c.add_argument("--ref-dir", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--opset", type=int, default=17)
    c.add_argument("--force", action="store_true")

    v = sub.add_parser("verify", help="check the ONNX model on ref/cat")
    v.add_argument("--onnx", required=True)
    v.add_argument("--ref-dir", required=True)
    v.add_argument("--threads", type=int, default=2)
    v.add_argument("--tol", type=float, default=1e-4)
    v.add_argument("--json")

    t = sub.add_parser("time", help="time ONNX Runtime")
    t.add_argument("--onnx", required=True)
    t.add_argument("--ref-dir", required=True)
    t.add_argument("--batch", type=parse_batches, default=[1, 16])
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--min-runs", type=int, default=10)
    t.add_argument("--min-seconds", type=float, default=10.0)
    t.add_argument("--max-runs", type=int, default=10000)
    t.add_argument("--json")

    r = sub.add_parser("report", help="Markdown comparison tables over all rounds")
    r.add_argument("--ort", required=True, action="append", type=round_spec, metavar="R=PATH",
                   help="ORT JSON of round R (one per round)")
    r.add_argument("--conveyor", action="append", type=round_kernel_spec, metavar="R:KERNEL=JSON_OR_!ERROR",
                   help="conveyor bench output of KERNEL in round R, or !why that run has no figures")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--md")
    r.add_argument("--git", help="free text describing the conveyor source revision")
    r.add_argument("--relative-to", default=os.getcwd())
    r.add_argument("--nice", help="the nice value the timed phases ran with, for the header")
    r.add_argument("--load", action="append", type=round_kernel_spec, metavar="R:KERNEL=FRACTION",
                   help="other processes' CPU share during that conveyor run (from 'run')")
    r.add_argument("--load-limit", type=float, default=0.10)

    u = sub.add_parser("run", help="run a command, recording other processes' CPU load meanwhile")
    u.add_argument("--stdout", required=True)
    u.add_argument("--stderr", required=True)
    u.add_argument("--load", required=True, help="file to write the load fraction to")
    u.add_argument("cmd_line", nargs=argparse.REMAINDER)

    args = p.parse_args()
    return {"convert": cmd_convert, "verify": cmd_verify, "time": cmd_time, "report": cmd_report,
            "run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
