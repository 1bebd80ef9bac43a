"""Benchmark: would another weight format, or llama.cpp's batched kernels, make batching pay?

    .venv/bin/python bench/local_formats.py [--formats emb-f16,emb-bf16,q8_0,q4_0,q5_0,iq4_nl,f16]
                                            [--steps 30] [--reps 3] [--greedy-tokens 64]

The bundled SmolLM2 GGUF has its 210 matrices in Q4_1 and its token
embedding, which is also the output matrix (49,152 x 576, tied), in Q8_0.
On x86, llama.cpp multiplies a Q4_1 matrix by a batch one `vec_dot` per
(weight row, sequence): the work grows with the sequences in the step. Its
batch kernels cover other types only: llamafile's sgemm (F16, BF16, Q8_0,
Q4_0, Q5_0, IQ4_NL; used when a step has 2 or more rows) and the CPU
"repack" layouts (Q4_0, IQ4_NL, MXFP4 and Q4_K on AVX2, Q2_K on AVX-512; the
K-quants need rows of a multiple of 256 values, this model's are 576 wide).
This script converts copies of the bundled file (llama_model_quantize with
allow_requantize, in a temporary folder, timed), each of `--formats`:

* `emb-f16`, `emb-bf16`: only the embedding/output matrix converted (the Q4_1
  matrices are copied byte for byte): the output product goes through
  sgemm's F16 or BF16 kernels;
* `q8_0`, `q4_0`, `q5_0`, `iq4_nl`, `f16`: every matrix requantized.

Then, each file in a fresh process with the machine's cores:

* the cost of one decode step with 1, 2, 3 and 4 sequences (one token each,
  at position ~100, best of `--reps` runs of `--steps` steps), with the
  repack layouts allowed (llama.cpp's default) and, for the types that have
  one on this CPU, without (`use_extra_bufts` off): whether the weights were
  repacked is read from llama.cpp's load log ("CPU_REPACK" buffer). The
  ratio k3/k1 (a 3-sequence step over a 1-sequence step of the same file) is
  what batching can give: 3 streams finishing within 1.6x of one alone
  needs about 1.6;
* reading a 400-token prompt (time to first token on a long prompt);
* quality against the bundled file: (1) on 1,000 tokens of this README, read
  teacher-forced, how often the copy's most likely next token is the bundled
  file's, and the mean KL divergence, next to the *noise floor*: the bundled
  file against itself read one token per decode instead of 512 (llama.cpp's
  kernels differ with the batch size); (2) greedy answers (`--greedy-tokens`
  tokens, the engine's default penalties) to the 23 prompts of
  bench/loops.py through our own engine: how many are the bundled file's,
  word for word (the bundled file gives the same answers batched or alone).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egp_core.local.engine import default_model_path  # noqa: E402
from egp_core.local.threads import machine_threads  # noqa: E402

# name: (llama_ftype of the whole file, ggml type of the token embedding or -1 for the ftype's choice)
FORMATS = {
    "emb-f16": (3, 1), "emb-bf16": (3, 30), "q8_0": (7, -1), "q4_0": (2, -1), "q5_0": (8, -1),
    "iq4_nl": (25, -1), "f16": (1, -1), "bf16": (32, -1),
}
REPACKABLE = {"q4_0", "iq4_nl"}  # types with a CPU_REPACK layout on AVX2 (at this model's shapes)
KS = (1, 2, 3, 4)
CPU_FLAGS = ("avx2", "f16c", "avx512f", "avx512_vnni", "avx512_bf16")


def quantize(src: str, dst: str, ftype: str, embedding: str) -> None:
    """Prints the seconds it took (run in its own process: llama.cpp logs every tensor)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(ftype)
    params.allow_requantize = True
    params.nthread = machine_threads()
    if int(embedding) >= 0:
        params.token_embedding_type = params.output_tensor_type = int(embedding)
    started = time.monotonic()
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"could not requantize to {dst}")
    print(time.monotonic() - started)


def child_steps(path: str, steps: int, reps: int, extra_bufts: bool) -> None:
    """Prints {"k1": ms, ..., "prefill400": ms} for one file (run in its own process; llama.cpp's
    load log goes to stderr, where the parent looks for the CPU_REPACK buffer)."""
    import llama_cpp
    from llama_cpp._internals import LlamaContext, LlamaModel

    threads = machine_threads()
    mparams = llama_cpp.llama_model_default_params()
    mparams.use_extra_bufts = extra_bufts
    model = LlamaModel(path_model=path, params=mparams, verbose=True)
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


def child_logits(path: str, out: str, n_batch: str) -> None:
    """Saves the next-token log probabilities over 1,000 tokens of the README, read `n_batch`
    tokens per decode (run in its own process)."""
    import numpy as np
    from llama_cpp import Llama

    n = int(n_batch)
    llm = Llama(path, n_ctx=2048, n_batch=n, n_ubatch=n, logits_all=True, verbose=False, n_threads=machine_threads())
    tokens = llm.tokenize((ROOT / "README.md").read_text()[:6000].encode())[:1000]
    llm.eval(tokens)
    scores = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    scores -= scores.max(axis=1, keepdims=True)
    scores -= np.log(np.exp(scores).sum(axis=1, keepdims=True))
    np.save(out, scores)


def child_greedy(path: str, out: str, tokens: str) -> None:
    """Saves greedy answers to bench/loops.py's prompts, through the engine (4 at a time)."""
    from bench.loops import PROMPTS
    from egp_core.local.engine import Engine, Job, ModelSpec
    from egp_core.local.jobs import Delta
    from egp_core.local.sampling import SamplingParams

    engine = Engine(ModelSpec("copy", Path(path)), n_ctx=1024, slots=4, max_waiting=len(PROMPTS))
    engine.load()
    texts: list[list[str]] = [[] for _ in PROMPTS]

    def sink(parts: list[str]):
        return lambda event: parts.append(event.text) if isinstance(event, Delta) else None

    params = SamplingParams.of(temperature=0, max_tokens=int(tokens))
    jobs = [
        engine.submit(Job(engine.tokenize_prompt(p.text), params, sink(texts[i]))) for i, p in enumerate(PROMPTS)
    ]
    for job in jobs:
        job.done.wait()
    engine.close()
    Path(out).write_text(json.dumps(["".join(t) for t in texts]))


def run_child(*args: str) -> tuple[str, str]:
    """(last stdout line, stderr) of this script run with `args` in a fresh process."""
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"a child failed: {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return (lines[-1] if lines else ""), done.stderr


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in CPU_FLAGS if f in flags) or "none of " + ", ".join(CPU_FLAGS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="emb-f16,emb-bf16,q8_0,q4_0,q5_0,iq4_nl,f16")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--greedy-tokens", type=int, default=64)
    parser.add_argument("--child-steps", help=argparse.SUPPRESS)
    parser.add_argument("--no-repack", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-logits", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-greedy", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-quantize", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_steps:
        return child_steps(args.child_steps, args.steps, args.reps, not args.no_repack)
    if args.child_logits:
        return child_logits(*args.child_logits)
    if args.child_greedy:
        return child_greedy(*args.child_greedy)
    if args.child_quantize:
        return quantize(*args.child_quantize)

    import llama_cpp
    import numpy as np

    bundled = default_model_path()
    print(f"bundled file: {bundled.name}; {machine_threads()} threads; CPU: {cpu_flags()}")
    print(f"llama.cpp: {llama_cpp.llama_print_system_info().decode().strip()}")
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    names = [n.strip().lower() for n in args.formats.split(",") if n.strip()]
    rows: list[tuple[str, bool, dict, float, int, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {"bundled": (bundled, 0.0)}
        for name in names:
            dst = Path(tmp) / f"{name}.gguf"
            ftype, embedding = FORMATS[name]
            seconds = float(run_child("--child-quantize", str(bundled), str(dst), str(ftype), str(embedding))[0])
            files[name] = (dst, seconds)

        def logits(path: Path, out: str, n_batch: int) -> np.ndarray:
            run_child("--child-logits", str(path), str(Path(tmp) / out), str(n_batch))
            return np.load(Path(tmp) / out)

        def greedy(path: Path, out: str) -> list[str]:
            run_child("--child-greedy", str(path), str(Path(tmp) / out), str(args.greedy_tokens))
            return json.loads((Path(tmp) / out).read_text())

        def compare(ref: np.ndarray, logp: np.ndarray) -> str:
            agree = float(np.mean(ref.argmax(1) == logp.argmax(1)))
            kl = float(np.mean(np.sum(np.exp(ref) * (ref - logp), axis=1)))
            return f"top-1 {agree:.1%}, KL {kl:.4f}"

        ref = logits(bundled, "bundled.npy", 512)
        floor = compare(ref, logits(bundled, "bundled-1.npy", 1))
        ref_texts = greedy(bundled, "bundled.json")
        for name, (path, seconds) in files.items():
            quality = ""
            if name != "bundled":
                texts = greedy(path, f"{name}.json")
                same = sum(a == b for a, b in zip(ref_texts, texts, strict=True))
                quality = f"{compare(ref, logits(path, f'{name}.npy', 512))}; greedy answers {same}/{len(texts)}"
            for repack in (True, False) if name in REPACKABLE else (True,):
                flags = ["--child-steps", str(path), "--steps", str(args.steps), "--reps", str(args.reps)]
                out, log = run_child(*flags, *([] if repack else ["--no-repack"]))
                used = "CPU_REPACK model buffer" in log
                rows.append((name, used, json.loads(out), seconds, path.stat().st_size, quality))
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    base = rows[0][2]["k1"]
    print(f"\n{'file':<9} {'repack':>6} {'MB':>4} {'conv s':>6} " + " ".join(f"{f'{k} seq ms':>8}" for k in KS)
          + f" {'k3/k1':>5} {'k3/bundled k1':>13} {'1 seq vs bundled':>16} {'400-tok prompt ms':>17}  quality vs bundled")
    for name, used, steps, seconds, size, quality in rows:
        print(f"{name:<9} {'yes' if used else 'no':>6} {size / 1e6:>4.0f} {seconds:>6.1f} "
              + " ".join(f"{steps[f'k{k}']:>8.2f}" for k in KS)
              + f" {steps['k3'] / steps['k1']:>5.2f} {steps['k3'] / base:>13.2f} {base / steps['k1']:>15.2f}x"
              + f" {steps['prefill400']:>17.0f}  {quality}")
    print(f"noise floor: the bundled file read 1 token per decode vs 512: {floor}; greedy answers batched"
          " (4 at a time) are the ones alone, word for word (tests/test_local_batch.py)")
    print("(k3/k1: a 3-sequence step over a 1-sequence step of the same file; 3 streams within 1.6x of one alone"
          " needs about 1.6. k3/bundled k1: over one stream on the bundled file. 1 seq vs bundled: one stream's"
          " speed against the bundled file's. repack: the weights went to llama.cpp's CPU_REPACK buffer)")


if __name__ == "__main__":
    main()
