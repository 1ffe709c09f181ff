#!/usr/bin/env python3
"""Helper for benchmarks/onnx_vs_conveyor.sh: ONNX conversion, check, ORT timing, report.

Run it with the benchmark venv's Python (benchmarks/.venv/bin/python). Subcommands:

  convert  tf_keras JSON config + legacy Keras 2 weights file -> ONNX (skipped if the file exists)
  verify   run the ONNX model on ref/cat.input.f32 and compare with ref/cat.probs.f32
  time     time ONNX Runtime (CPU EP) at several batch sizes, write a JSON result
  report   Markdown table from the ORT JSON and the `conveyor bench --json` outputs
  run      run one command (conveyor bench), measuring the CPU load of other processes meanwhile

The ORT JSON has the shape of `conveyor bench --json`, with extra keys:
  {"engine": "onnxruntime", "threads": 2, "model": "...", "results": [
     {"batch": 1, "runs": 120, "ms_per_batch": {"min":..,"median":..,"max":..},
      "ms_per_image":.., "images_per_second":.., "gflops":.., "max_abs_diff_vs_ref":..}, ...]}
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


def cmd_report(args):
    with open(args.ort) as f:
        ort_res = json.load(f)
    ort_by_batch = {r["batch"]: r for r in ort_res["results"]}
    batches = sorted(ort_by_batch)

    # --conveyor KERNEL=PATH (JSON from conveyor bench) or KERNEL=!message (a run that failed).
    conv = []
    for spec in args.conveyor or []:
        kernel, _, path = spec.partition("=")
        entry = {"requested": kernel, "data": None, "error": None, "load": None}
        if path.startswith("!"):
            entry["error"] = path[1:]
        else:
            try:
                entry["data"] = load_json_output(path)
                if not isinstance(entry["data"].get("results"), list):
                    raise ValueError("no 'results' list")
            except Exception as e:
                entry["data"] = None
                entry["error"] = f"unreadable JSON from conveyor bench ({path}): {e}"
        conv.append(entry)
    for spec in args.load or []:
        kernel, _, frac = spec.partition("=")
        for e in conv:
            if e["requested"] == kernel:
                try:
                    e["load"] = float(frac)
                except ValueError:
                    pass
                if e["load"] != e["load"]:  # nan
                    e["load"] = None

    def label(e):
        actual = (e["data"] or {}).get("kernel")
        if actual and actual.lower() != e["requested"].lower():
            return f"{e['requested']} ({actual})"
        return e["requested"]

    cpu, isa = cpu_model()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# ONNX Runtime vs conveyor: InceptionV3 (299x299x3, float32)",
        "",
        f"- date: {now}",
        f"- CPU: {cpu} ({os.cpu_count()} logical cores; {', '.join(isa) or 'no AVX2'})",
        f"- threads: {args.threads}",
        f"- ONNX Runtime {ort_res.get('version')} (CPU EP, intra_op_num_threads={ort_res.get('threads')}, "
        f"ORT_ENABLE_ALL), model `{os.path.relpath(ort_res['model'], args.relative_to)}`",
    ]
    if args.git:
        lines.append(f"- conveyor source: {args.git}")
    if args.nice:
        lines.append(f"- timed phases run under `nice -n {args.nice}`")
    notes = []
    for e in conv:
        if e["data"]:
            d = e["data"]
            if d.get("threads") not in (None, args.threads):
                notes.append(f"conveyor `{e['requested']}` reports threads={d.get('threads')}, "
                             f"expected {args.threads}")
            if e["requested"].lower() != "auto" and d.get("kernel") and \
                    d["kernel"].lower() != e["requested"].lower():
                notes.append(f"conveyor was asked for kernel `{e['requested']}` but reports "
                             f"`{d['kernel']}`")
            missing = [b for b in batches if not any(x.get("batch") == b for x in d["results"])]
            if missing:
                notes.append(f"conveyor `{e['requested']}` reported no result for batch "
                             f"{', '.join(map(str, missing))}")
        else:
            notes.append(f"conveyor `{e['requested']}`: {e['error']}")
    loads = [("ORT", r.get("batch"), r.get("other_cpu_fraction")) for r in ort_res["results"]]
    for e in conv:
        if e["data"] and e.get("load") is not None:
            loads.append((f"conveyor {label(e)}", None, e["load"]))
    for name, batch, frac in loads:
        if frac is not None and frac > args.load_limit:
            where = f"{name} batch {batch}" if batch is not None else name
            notes.append(f"other processes used {100 * frac:.0f}% of the CPUs during {where}: "
                         "those figures are too slow; rerun on a quiet machine")
    lines += ["", "ms/image is the median time of one batch divided by the batch size. "
              "ratio = conveyor / ORT (< 1 means conveyor is faster).", ""]

    head = ["batch", "ORT ms/image"]
    for e in conv:
        head += [f"conveyor {label(e)} ms/image", "ratio"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join(["---:"] * len(head)) + " |")
    for b in batches:
        o = ort_by_batch[b]
        row = [str(b), fmt(o["ms_per_image"])]
        for e in conv:
            r = None
            if e["data"]:
                r = next((x for x in e["data"]["results"] if x.get("batch") == b), None)
            ms = r.get("ms_per_image") if r else None
            row += [fmt(ms), fmt(ms / o["ms_per_image"] if ms else None, 3)]
        lines.append("| " + " | ".join(row) + " |")

    # Details: every engine / kernel, every batch.
    lines += ["", "Details (ms per batch over the timed runs):", "",
              "| engine | batch | runs | min ms | median ms | max ms | img/s | GFLOP/s | other load |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = [("ORT", r, r.get("other_cpu_fraction")) for r in ort_res["results"]]
    for e in conv:
        if e["data"]:
            rows += [(f"conveyor {label(e)}", r, e["load"]) for r in e["data"]["results"]]
    for name, r, frac in rows:
        mpb = r.get("ms_per_batch") or {}
        other = "n/a" if frac is None else f"{100 * frac:.0f}%"
        lines.append(f"| {name} | {r.get('batch')} | {r.get('runs', 'n/a')} | {fmt(mpb.get('min'), 1)} | "
                     f"{fmt(mpb.get('median'), 1)} | {fmt(mpb.get('max'), 1)} | "
                     f"{fmt(r.get('images_per_second'), 1)} | {fmt(r.get('gflops'), 1)} | {other} |")
    if ort_res.get("gflop_per_image"):
        lines += ["", f"ORT GFLOP/s counts {ort_res['gflop_per_image']:.2f} GFLOP per image "
                  "(2 x multiply-adds of Conv and MatMul/Gemm); conveyor's figure is its own. "
                  "Other load: share of all CPUs used by other processes during the timing "
                  "(ORT: per batch size; conveyor: its whole run)."]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)
        log(f"[report] written to {args.md}")
    return 3 if any(e["data"] is None for e in conv) else 0


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

    r = sub.add_parser("report", help="Markdown comparison table")
    r.add_argument("--ort", required=True)
    r.add_argument("--conveyor", action="append", metavar="KERNEL=JSON_OR_!ERROR")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--md")
    r.add_argument("--git", help="free text describing the conveyor source revision")
    r.add_argument("--relative-to", default=os.getcwd())
    r.add_argument("--nice", help="the nice value the timed phases ran with, for the header")
    r.add_argument("--load", action="append", metavar="KERNEL=FRACTION",
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
