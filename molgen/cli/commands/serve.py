"""``molgen serve``: an ask/tell campaign over HTTP."""

from __future__ import annotations

import argparse

NAME = "serve"


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``serve`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "serve", help="serve an ask/tell campaign over HTTP (POST /ask, POST /tell, GET /status)",
        description="Serve a campaign made by `molgen campaign new` over HTTP (FastAPI + uvicorn: pip install "
        "'molgen[serve]'). Endpoints: POST /ask {n, request_id}, POST /tell {results: [{id, value | error}]}, "
        "GET /status, GET /candidates?top=N, GET /health; OpenAPI schema at /openapi.json. Clients send "
        "'Authorization: Bearer <token>' with the token in MOLGEN_SERVE_TOKEN; without a token the server binds "
        "to loopback only. It holds the campaign's lock while it runs and commits every batch and answer before "
        "replying, so killing it loses nothing acknowledged.",
    )
    parser.add_argument("campaign", help="campaign directory")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1; others need MOLGEN_SERVE_TOKEN)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--max-request-bytes", type=int, default=1_000_000, help="largest request body (default 1 MB)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.workflows.lab_server import serve

    serve(args.campaign, host=args.host, port=args.port, max_request_bytes=args.max_request_bytes, log_level=args.log_level)
    return 0
