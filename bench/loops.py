"""Benchmark: how many everyday answers of the built-in model fall into a loop.

    .venv/bin/python bench/loops.py [--rounds 1] [--prompts 23] [--show]

The prompts below go, as the chat page sends a lone question to the built-in
model (SGP v5 chat completions), with the page's default style (Balanced:
temperature 0.5, top_p 1.0, up to 512 tokens), to the real local server over
HTTP, four at a time. Each prompt has its own fixed seed (`SEED` + its index,
+1000 per round), so two runs of the same code give the same answers (two
runs gave the same defaults answers; a long looping baseline answer may end a
few tokens apart, as four answers decoded together can move a logit by a
rounding error). An answer *loops* when some 6-word sequence comes back 3 or
more times.

Shapes: prompts that ask for a list must get one (at least as many lines
starting with "-", "*", "1." ... as they ask for, 3 when they name no number),
poems and the email must keep their line breaks (3 or more non-empty lines),
code must keep its lines and indentation (a `def` line followed by an indented
line).

In the same run, the same prompts and seeds with `frequency_penalty: 0` and
`presence_penalty: 0` in the request: explicit values win over the server's
defaults, so that is the model with no penalty at all, the baseline. An answer
with the defaults *lost its shape because of the penalty* when it misses its
shape and the baseline's answer to the same prompt and seed has it (a 135M
model sometimes writes a haiku on one line with no penalty at all).
Target: at most 5% of default answers loop, and no shape is lost because of
the penalty. The exit status is 1 when the defaults miss it.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local_server import start_server, stop  # noqa: E402
from egp_core.chat import build_request  # noqa: E402
from egp_core.local import DEFAULT_MODEL_ID  # noqa: E402
from egp_core.openai_compat import sgp_v5_client  # noqa: E402
from egp_core.types import AnswerOptions, Message, ModelParameters  # noqa: E402

SEED = 1000
LIST, LINES, CODE = "list", "lines", "code"


@dataclass(frozen=True)
class Prompt:
    text: str
    shape: str | None = None  # LIST, LINES, CODE: what the answer must keep
    items: int = 3  # for LIST: how many list lines at least


PROMPTS = [
    Prompt("Write a limerick about a cat.", LINES),
    Prompt("How do I make a cup of tea?"),
    Prompt("Summarise the plot of Cinderella."),
    Prompt("What is the capital of France?"),
    Prompt("Give me three tips for sleeping better, as a numbered list.", LIST, 3),
    Prompt("List five fruits that are high in vitamin C.", LIST, 5),
    Prompt("Write a short poem about the sea.", LINES),
    Prompt("Explain photosynthesis to a ten-year-old."),
    Prompt("What should I pack for a weekend camping trip? Use a bulleted list.", LIST),
    Prompt("Write a polite email asking my manager for a day off.", LINES),
    Prompt("Why is the sky blue?"),
    Prompt("Tell me a joke about computers."),
    Prompt("How do I boil an egg?"),
    Prompt("What are the benefits of regular exercise?"),
    Prompt("Write a haiku about autumn.", LINES),
    Prompt("Suggest a name for a pet goldfish."),
    Prompt("What is the difference between weather and climate?"),
    Prompt("Give me a recipe for pancakes, with a list of ingredients.", LIST),
    Prompt("Describe your ideal weekend."),
    Prompt("How can I save money on groceries? List some ideas.", LIST),
    Prompt("Write a short story about a robot who learns to paint."),
    Prompt("What is a good way to start learning to play the guitar?"),
    Prompt("Write a Python function that returns the largest number in a list.", CODE),
]
BALANCED = {"temperature": 0.5, "top_p": 1.0, "max_tokens": 512}  # ui/sidebar.py PRESETS + default max
NO_PENALTY = {"frequency_penalty": 0.0, "presence_penalty": 0.0}
LIST_LINE = re.compile(r"\s*([-*•+]|\d+[.)])\s")
CODE_BLOCK = re.compile(r"^[ \t]*def \w+\(.*\):[ \t]*\n[ \t]+\S", re.MULTILINE)


def loops(text: str, n: int = 6, times: int = 3) -> bool:
    words = re.findall(r"\w+", text.lower())
    counts = collections.Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return bool(counts) and max(counts.values()) >= times


def list_items(text: str) -> int:
    return sum(1 for line in text.splitlines() if LIST_LINE.match(line))


def shape_kept(prompt: Prompt, text: str) -> bool:
    if prompt.shape == LIST:
        return list_items(text) >= prompt.items
    if prompt.shape == LINES:
        return sum(1 for line in text.splitlines() if line.strip()) >= 3
    if prompt.shape == CODE:
        return bool(CODE_BLOCK.search(text))
    return True


@dataclass
class Answer:
    prompt: Prompt
    text: str
    tokens: int

    @property
    def loops(self) -> bool:
        return loops(self.text)

    @property
    def shape_ok(self) -> bool:
        return shape_kept(self.prompt, self.text)


def ask(url: str, prompt: Prompt, seed: int, params: dict) -> Answer:
    built = build_request(
        [Message(role="user", content=prompt.text)], model=DEFAULT_MODEL_ID,
        parameters=ModelParameters(**params), system_prompt=None, api="chat",
    )
    request = built.request.model_copy(update={"options": AnswerOptions(seed=seed)})
    with sgp_v5_client(url, api="chat", read_timeout=600) as client:
        stream = client.stream(request)
        for _ in stream:
            pass
    tokens = stream.usage.completion if stream.usage else 0
    return Answer(prompt, stream.text, tokens)


def run(url: str, prompts: list[Prompt], params: dict, rounds: int) -> list[Answer]:
    jobs = [(p, SEED + 1000 * r + i) for r in range(rounds) for i, p in enumerate(prompts)]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda job: ask(url, *job, params), jobs))


def summary(name: str, answers: list[Answer]) -> str:
    looping = sum(a.loops for a in answers)
    shaped = [a for a in answers if a.prompt.shape]
    breaks = sum("\n" in a.text for a in answers)
    return (f"{name:<22} loops {looping}/{len(answers)} = {looping / len(answers):.0%}; "
            f"shapes kept {sum(a.shape_ok for a in shaped)}/{len(shaped)} (lists, poems, email, code); "
            f"answers with line breaks {breaks}/{len(answers)}; "
            f"mean length {sum(a.tokens for a in answers) / len(answers):.0f} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="times each prompt is asked per setting (new seeds)")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    prompts = PROMPTS[: args.prompts]
    process, url, _ = start_server()
    try:
        results = {
            "defaults (the page)": run(url, prompts, BALANCED, args.rounds),
            "no penalty (baseline)": run(url, prompts, {**BALANCED, **NO_PENALTY}, args.rounds),
        }
    finally:
        stop(process)
    default, baseline = results.values()
    lost = [d for d, b in zip(default, baseline, strict=True) if not d.shape_ok and b.shape_ok]
    for name, answers in results.items():
        print(f"\n{name}:")
        for a in answers:
            marks = ("LOOPS " if a.loops else "") + ("" if a.shape_ok else f"NO-{a.prompt.shape.upper()} ")
            print(f"  {marks or 'ok '}{a.prompt.text[:50]!r} {a.tokens} tokens")
            if args.show or a.loops or not a.shape_ok:
                print("    " + a.text[:400].replace("\n", "\n    "))
    print()
    for name, answers in results.items():
        print(summary(name, answers))
    looping = sum(a.loops for a in default)
    print(f"looping share with the defaults: {looping}/{len(default)} = {looping / len(default):.1%} "
          f"(target <= 5%); shapes lost because of the penalty: {len(lost)}"
          + "".join(f"\n  {a.prompt.text!r}" for a in lost))
    sys.exit(0 if looping <= 0.05 * len(default) and not lost else 1)


if __name__ == "__main__":
    main()
