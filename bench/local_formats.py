"""Benchmark: would another weight format make batching (or one stream) faster?

    .venv/bin/python bench/local_formats.py [--formats q8_0,q4_0,q5_0] [--steps 30] [--reps 5]

The bundled SmolLM2 GGUF is Q4_1. llama.cpp's faster batched CPU matmuls
(llamafile's sgemm, the repacked Q4_0 layouts) cover other types (Q8_0,
Q4_0, ...), so this script requantizes a copy of the bundled file to each of
`--formats` (llama_model_quantize with allow_requantize, in a temporary
folder, timed) and, each file in a fresh process with the machine's cores:

* the cost of one decode step with 1, 2, 3 and 4 sequences (one token each,
  at position ~100, best of `--reps` runs of `--steps` steps), and the ratio
  to a 1-token step: batching pays when a 3-token step costs well under 3x;
  3 streams finishing within 1.6x of one alone needs about 1.6x;
* reading a 400-token prompt (time to first token on a long prompt);
* quality against the bundled file: on 1,000 tokens of this README, read
  teacher-forced, how often the copy's most likely next token is the bundled
  file's, and the mean KL divergence of its next-token distribution from the
  bundled file's (a requantized copy can only lose quality).

Printed per file: step costs in ms and as ratios to the bundled file's
1-token step.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egp_core.local.engine import default_model_path  # noqa: E402
from egp_core.local.threads import machine_threads  # noqa: E402

FTYPES = {"q4_0": 2, "q8_0": 7, "q5_0": 8, "q5_1": 9, "iq4_nl": 25, "f16": 1}
KS = (1, 2, 3, 4)


def quantize(src: str, dst: str, ftype: str) -> None:
    """Prints the seconds it took (run in its own process: llama.cpp logs every tensor)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(ftype)
    params.allow_requantize = True
    params.nthread = machine_threads()
    started = time.monotonic()
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"could not requantize to {dst}")
    print(time.monotonic() - started)


def child_steps(path: str, steps: int, reps: int) -> None:
    """Prints {"k1": ms, ..., "prefill400": ms} for one file (run in its own process)."""
    import llama_cpp
    from llama_cpp._internals import LlamaContext, LlamaModel

    threads = machine_threads()
    model = LlamaModel(path_model=path, params=llama_cpp.llama_model_default_params(), verbose=False)
    p = llama_cpp.llama_context_default_params()
    p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq_max, p.kv_unified = 4 * 2048, 512, 512, 4, False
    p.n_threads = p.n_threads_batch = threads
    p.no_perf = True
    context = LlamaContext(model=model, params=p, verbose=False)
    ctx = context.ctx
    memory = llama_cpp.llama_get_memory(ctx)
    batch = llama_cpp.llama_batch_init(512, 0, 1)

    def decode(tokens: list[tuple[int, int, int]]) -> None:  # (token, position, sequence)
        for i, (token, pos, seq) in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, 1
            batch.seq_id[i][0] = seq
        batch.n_tokens = len(tokens)
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed")

    for seq in range(4):
        decode([(100 + i, i, seq) for i in range(100)])
    for j in range(10):  # warm-up
        decode([(200 + j, 100 + j, seq) for seq in range(4)])
    for seq in range(4):
        llama_cpp.llama_memory_seq_rm(memory, seq, 100, -1)
    best = {k: float("inf") for k in KS}
    for _ in range(reps):
        for k in KS:
            started = time.perf_counter()
            for j in range(steps):
                decode([(200 + j, 100 + j, seq) for seq in range(k)])
            best[k] = min(best[k], (time.perf_counter() - started) / steps * 1000)
            for seq in range(4):
                llama_cpp.llama_memory_seq_rm(memory, seq, 100, -1)
    prefill = float("inf")
    for _ in range(2):
        llama_cpp.llama_memory_seq_rm(memory, 0, -1, -1)
        started = time.perf_counter()
        decode([(300 + i, i, 0) for i in range(400)])
        prefill = min(prefill, (time.perf_counter() - started) * 1000)
    llama_cpp.llama_batch_free(batch)
    print(json.dumps({**{f"k{k}": v for k, v in best.items()}, "prefill400": prefill}), flush=True)


def child_logits(path: str, out: str) -> None:
    """Saves the next-token log probabilities over 1,000 tokens of the README (run in its own process)."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(path, n_ctx=2048, logits_all=True, verbose=False, n_threads=machine_threads())
    tokens = llm.tokenize((ROOT / "README.md").read_text()[:6000].encode())[:1000]
    llm.eval(tokens)
    scores = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    scores -= scores.max(axis=1, keepdims=True)
    scores -= np.log(np.exp(scores).sum(axis=1, keepdims=True))
    np.save(out, scores)


def run_child(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"a child failed: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="q8_0,q4_0,q5_0")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--child-steps", help=argparse.SUPPRESS)
    parser.add_argument("--child-logits", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-quantize", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_steps:
        return child_steps(args.child_steps, args.steps, args.reps)
    if args.child_logits:
        return child_logits(*args.child_logits)
    if args.child_quantize:
        return quantize(*args.child_quantize)

    import numpy as np

    bundled = default_model_path()
    print(f"bundled file: {bundled.name}; {machine_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        files = {"bundled": (bundled, 0.0)}
        for name in args.formats.split(","):
            name = name.strip().lower()
            dst = Path(tmp) / f"{name}.gguf"
            seconds = float(run_child("--child-quantize", str(bundled), str(dst), str(FTYPES[name])))
            files[name] = (dst, seconds)
        ref_path = Path(tmp) / "bundled.npy"
        run_child("--child-logits", str(bundled), str(ref_path))
        ref = np.load(ref_path)
        rows = {}
        for name, (path, seconds) in files.items():
            steps = json.loads(run_child("--child-steps", str(path), "--steps", str(args.steps), "--reps", str(args.reps)))
            quality = ""
            if name != "bundled":
                out = Path(tmp) / f"{name}.npy"
                run_child("--child-logits", str(path), str(out))
                logp = np.load(out)
                agree = float(np.mean(ref.argmax(1) == logp.argmax(1)))
                kl = float(np.mean(np.sum(np.exp(ref) * (ref - logp), axis=1)))
                quality = f"top-1 agrees {agree:.0%}, KL {kl:.3f}"
            rows[name] = (steps, seconds, path.stat().st_size, quality)
    base = rows["bundled"][0]["k1"]
    print(f"\n{'file':<8} {'MB':>5} {'convert s':>9} " + " ".join(f"{f'{k} seq ms':>9}" for k in KS)
          + f" {'k3/k1':>6} {'k1 vs bundled':>13} {'400-token prompt ms':>19}  quality vs bundled")
    for name, (steps, seconds, size, quality) in rows.items():
        print(f"{name:<8} {size / 1e6:>5.0f} {seconds:>9.1f} " + " ".join(f"{steps[f'k{k}']:>9.2f}" for k in KS)
              + f" {steps['k3'] / steps['k1']:>6.2f} {base / steps['k1']:>12.2f}x {steps['prefill400']:>19.0f}  {quality}")
    print("(k3/k1: a 3-sequence step over a 1-sequence step of the same file; 3 streams within 1.6x of one"
          " alone needs about 1.6. k1 vs bundled: one stream's speed against the bundled file's)")


if __name__ == "__main__":
    main()
