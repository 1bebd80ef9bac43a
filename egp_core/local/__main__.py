"""`python -m egp_core.local`: run the local EGP-compatible model server."""

from __future__ import annotations

import argparse
import logging
import socket

import uvicorn

from egp_core.local.engine import DEFAULT_MAX_WAITING, MAX_SLOTS, model_specs
from egp_core.local.registry import Registry
from egp_core.local.server import create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m egp_core.local",
        description=(
            "Serve the bundled SmolLM2-135M-Instruct model (and any GGUF files named in "
            "$EGP_LOCAL_MODELS) over the EGP completions API. Set $EGP_LOCAL_API_KEY to "
            "require that key in the x-api-key header."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default: 8765; 0 = any free port)"
    )
    parser.add_argument(
        "--models", default=None, help="extra GGUF files, comma-separated (default: $EGP_LOCAL_MODELS)"
    )
    parser.add_argument(
        "--n-ctx", type=int, default=None, help="context size in tokens (default: the model's, at most 8192)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="most CPU threads for llama.cpp (default: this machine's cores; fewer while other programs keep some busy)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=None,
        help=f"requests decoded together per model (default: up to {MAX_SLOTS}, as memory allows)",
    )
    parser.add_argument(
        "--max-waiting", type=int, default=DEFAULT_MAX_WAITING, help="queued requests per model before 503"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    registry = Registry(
        model_specs(args.models), n_ctx=args.n_ctx, n_threads=args.threads, slots=args.parallel,
        max_waiting=args.max_waiting,
    )
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    # The first line of output says where we listen (tests and scripts read it).
    print(f"Serving {', '.join(registry.ids)} on http://{host}:{port}", flush=True)
    config = uvicorn.Config(create_app(registry), log_level=args.log_level, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
