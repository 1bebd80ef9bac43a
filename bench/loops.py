"""Benchmark: how many everyday answers of the built-in model fall into a loop.

    .venv/bin/python bench/loops.py [--rounds 1] [--prompts 22]

The prompts below go, as the chat page sends a lone question, with the page's
default style (Balanced: temperature 0.5, top_p 1.0, up to 512 tokens), through
our client to the real local server over HTTP, four at a time. An answer
*loops* when some 6-word sequence comes back 3 or more times. Prompts that ask
for a list must get one (3 or more lines starting with "-", "*", "1." ...).

In the same run, the same prompts with `frequency_penalty: 0` and
`presence_penalty: 0` in the request: explicit values win over the server's
defaults, so that is the model with no penalty at all, the baseline.
Target: at most 5% of default answers loop, and no list is lost.
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
from egp_core.client import EGPClient  # noqa: E402
from egp_core.local import DEFAULT_MODEL_ID  # noqa: E402
from egp_core.types import Message, ModelParameters  # noqa: E402

# (prompt, asks for a list)
PROMPTS = [
    ("Write a limerick about a cat.", False),
    ("How do I make a cup of tea?", False),
    ("Summarise the plot of Cinderella.", False),
    ("What is the capital of France?", False),
    ("Give me three tips for sleeping better, as a numbered list.", True),
    ("List five fruits that are high in vitamin C.", True),
    ("Write a short poem about the sea.", False),
    ("Explain photosynthesis to a ten-year-old.", False),
    ("What should I pack for a weekend camping trip? Use a bulleted list.", True),
    ("Write a polite email asking my manager for a day off.", False),
    ("Why is the sky blue?", False),
    ("Tell me a joke about computers.", False),
    ("How do I boil an egg?", False),
    ("What are the benefits of regular exercise?", False),
    ("Write a haiku about autumn.", False),
    ("Suggest a name for a pet goldfish.", False),
    ("What is the difference between weather and climate?", False),
    ("Give me a recipe for pancakes, with a list of ingredients.", True),
    ("Describe your ideal weekend.", False),
    ("How can I save money on groceries? List some ideas.", True),
    ("Write a short story about a robot who learns to paint.", False),
    ("What is a good way to start learning to play the guitar?", False),
]
BALANCED = {"temperature": 0.5, "top_p": 1.0, "max_tokens": 512}  # ui/sidebar.py PRESETS + default max
NO_PENALTY = {"frequency_penalty": 0.0, "presence_penalty": 0.0}
LIST_LINE = re.compile(r"\s*([-*•]|\d+[.)])\s")


def loops(text: str, n: int = 6, times: int = 3) -> bool:
    words = re.findall(r"\w+", text.lower())
    counts = collections.Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return bool(counts) and max(counts.values()) >= times


def has_list(text: str) -> bool:
    return sum(1 for line in text.splitlines() if LIST_LINE.match(line)) >= 3


@dataclass
class Answer:
    prompt: str
    wants_list: bool
    text: str
    tokens: int

    @property
    def loops(self) -> bool:
        return loops(self.text)

    @property
    def list_ok(self) -> bool:
        return has_list(self.text) if self.wants_list else True


def ask(url: str, prompt: str, wants_list: bool, params: dict) -> Answer:
    built = build_request(
        [Message(role="user", content=prompt)], model=DEFAULT_MODEL_ID,
        parameters=ModelParameters(**params), system_prompt=None,
    )
    with EGPClient(url, read_timeout=600) as client:
        stream = client.stream(built.request)
        for _ in stream:
            pass
    tokens = stream.usage.completion if stream.usage else 0
    return Answer(prompt, wants_list, stream.text, tokens)


def run(url: str, prompts, params: dict, rounds: int) -> list[Answer]:
    jobs = [p for _ in range(rounds) for p in prompts]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda p: ask(url, p[0], p[1], params), jobs))


def summary(name: str, answers: list[Answer]) -> str:
    looping = sum(a.loops for a in answers)
    lists = [a for a in answers if a.wants_list]
    breaks = sum("\n" in a.text for a in answers)
    return (f"{name:<22} loops {looping}/{len(answers)} = {looping / len(answers):.0%}; "
            f"lists kept {sum(a.list_ok for a in lists)}/{len(lists)}; "
            f"answers with line breaks {breaks}/{len(answers)}; "
            f"mean length {sum(a.tokens for a in answers) / len(answers):.0f} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="times each prompt is asked per setting")
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
    for name, answers in results.items():
        print(f"\n{name}:")
        for a in answers:
            marks = ("LOOPS " if a.loops else "") + ("" if a.list_ok else "NO-LIST ")
            print(f"  {marks or 'ok '}{a.prompt[:50]!r} {a.tokens} tokens")
            if args.show or a.loops or not a.list_ok:
                print("    " + a.text[:400].replace("\n", "\n    "))
    print()
    for name, answers in results.items():
        print(summary(name, answers))
    default = results["defaults (the page)"]
    share = sum(a.loops for a in default) / len(default)
    print(f"looping share with the defaults: {share:.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
