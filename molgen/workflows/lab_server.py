"""The HTTP face of an ask/tell campaign (``molgen serve``; FastAPI, the
optional extra ``molgen[serve]``).

Endpoints: ``POST /ask``, ``POST /tell``, ``GET /status``, ``GET /candidates``,
``GET /health``; the OpenAPI schema at ``/openapi.json`` (docs at ``/docs``).

Guarantees, the same as the CLI's: the server holds the campaign's run lock
for its whole life (one writer: a CLI ``campaign ask`` meanwhile is refused),
handles one request at a time, and commits every batch and every answer
before it replies, so a server killed at any moment (SIGKILL included) loses
nothing it acknowledged; restarted, it continues from the store.

Security: a bearer token (``Authorization: Bearer ...``) read from the
environment is required on every endpoint but ``/health`` and the schema;
without a token the server refuses to bind anywhere but the loopback
interface. Request bodies above ``max_request_bytes`` get 413.
"""

# No "from __future__ import annotations": FastAPI reads the endpoint annotations of the locally imported
# types (Request, the request models) at definition time.

import hmac
import ipaddress
import json
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from molgen.core.errors import ConfigError, DataError, MolgenError

TOKEN_ENV = "MOLGEN_SERVE_TOKEN"
DEFAULT_MAX_REQUEST_BYTES = 1_000_000
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only the loopback interface (``0.0.0.0`` does not)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a campaign beyond this machine without a token.

    Raises:
        ConfigError: ``host`` is not loopback and no token is set.
    """
    if not token and not is_loopback(host):
        raise ConfigError(f"refusing to serve on {host} without a token: set {TOKEN_ENV} (clients send "
                          "'Authorization: Bearer <token>'), or bind to 127.0.0.1")


def _status_for(exc: MolgenError) -> int:
    from molgen.loops.asktell import BudgetSpentError, ConflictError, UnknownIdError

    if isinstance(exc, UnknownIdError):
        return 404
    if isinstance(exc, (ConflictError, BudgetSpentError)):
        return 409
    if isinstance(exc, (DataError, ConfigError)):
        return 422
    return 400


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, checked on
    the declared length and on the bytes actually received (chunked bodies)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send):
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(campaign_dir: str | Path, token: str | None = None, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               campaign=None):
    """The FastAPI application serving the campaign in ``campaign_dir``.

    The campaign is opened (and its lock taken) when the application starts
    and closed when it stops.

    Args:
        campaign_dir: A directory made by ``molgen campaign new``.
        token: Bearer token required on every endpoint but ``/health`` and
            the schema (None: no authentication; bind to loopback only).
        max_request_bytes: Largest accepted request body.
        campaign: The campaign, already open (None: opened at start-up).

    Returns:
        The ASGI application.

    Raises:
        MolgenError: FastAPI is not installed.
    """
    try:
        from fastapi import Depends, FastAPI, HTTPException, Query, Request
        from fastapi.responses import JSONResponse
        from pydantic import BaseModel, Field
    except ImportError:
        raise MolgenError("the HTTP service needs FastAPI and uvicorn: pip install 'molgen[serve]'") from None
    from contextlib import asynccontextmanager

    from molgen.workflows.lab import open_campaign, read_settings

    campaign_dir = Path(campaign_dir)
    read_settings(campaign_dir)  # a wrong folder fails before the server binds
    state: dict[str, Any] = {}
    one_at_a_time = threading.Lock()

    @asynccontextmanager
    async def lifespan(app):
        with ExitStack() as stack:
            state["campaign"] = campaign or stack.enter_context(open_campaign(campaign_dir, command="molgen serve"))
            yield
            state.clear()

    class AskRequest(BaseModel):
        n: int | None = Field(None, ge=1, le=10_000, description="batch size (default: the campaign's)")
        request_id: str | None = Field(None, min_length=1, max_length=200,
                                       description="asking again with the same id returns the same batch")

    class Answer(BaseModel):
        id: str = Field(min_length=1, max_length=200)
        value: float | None = Field(None, description="the measurement (finite)")
        error: str | None = Field(None, max_length=2000, description="why it could not be measured")

    class TellRequest(BaseModel):
        results: list[Answer] = Field(min_length=1, max_length=100_000)

    def authorize(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="molgen ask/tell campaign", version="1", lifespan=lifespan,
                  description=f"Ask/tell campaign in {campaign_dir.name}: POST /ask for a batch, POST /tell the measurements.")

    @app.exception_handler(MolgenError)
    async def molgen_error(request: Request, exc: MolgenError):
        return JSONResponse(status_code=_status_for(exc), content={"detail": str(exc)})

    def call(fn, *args, **kwargs):
        with one_at_a_time:
            return fn(*args, **kwargs)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness (no token needed)."""
        return {"status": "ok"}

    @app.post("/ask", dependencies=[Depends(authorize)])
    def ask(body: AskRequest) -> dict[str, Any]:
        """Propose the next batch (pending until told)."""
        campaign = state["campaign"]
        batch = call(campaign.ask, body.n, request=body.request_id)
        return {"batch": batch[0].batch if batch else None, "candidates": [p.to_dict() for p in batch],
                "remaining_budget": call(campaign.remaining_budget)}

    @app.post("/tell", dependencies=[Depends(authorize)])
    def tell(body: TellRequest) -> dict[str, int]:
        """Record measurements (all or nothing)."""
        return call(state["campaign"].tell, [a.model_dump() for a in body.results]).to_dict()

    @app.get("/status", dependencies=[Depends(authorize)])
    def status() -> dict[str, Any]:
        """Budget, counts, best values, per-batch progress."""
        return call(state["campaign"].status)

    @app.get("/candidates", dependencies=[Depends(authorize)])
    def candidates(top: int | None = Query(None, ge=1, le=100_000, description="best measured first, this many"),
                   status: str | None = Query(None, pattern="^(pending|measured|failed)$")) -> list[dict[str, Any]]:
        """Asked candidates (``top``: the best measured ones, best first)."""
        campaign = state["campaign"]
        if top is not None:
            return [p.to_dict() for p in call(campaign.best, top)]
        return [p.to_dict() for p in call(campaign.proposals, status)]

    return BodyLimit(app, max_request_bytes)


def serve(campaign_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
          max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, token: str | None = None, log_level: str = "info") -> None:
    """Serve the campaign until interrupted.

    Args:
        campaign_dir: The campaign directory.
        host: Interface to bind (loopback unless a token is set).
        port: TCP port.
        max_request_bytes: Largest accepted request body.
        token: Bearer token (None: read ``MOLGEN_SERVE_TOKEN``; empty: none).
        log_level: uvicorn's log level.

    Raises:
        ConfigError: a non-loopback host without a token; MolgenError: no
            campaign there, or the serve extra is missing.
    """
    import os

    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    check_bind(host, token)
    try:
        import uvicorn
    except ImportError:
        raise MolgenError("the HTTP service needs FastAPI and uvicorn: pip install 'molgen[serve]'") from None
    from molgen.workflows.lab import open_campaign

    # Opened here, not at the application's start-up, so a held lock or a bad folder is one clear error line.
    with open_campaign(campaign_dir, command="molgen serve") as campaign:
        app = create_app(campaign_dir, token=token, max_request_bytes=max_request_bytes, campaign=campaign)
        print(f"serving {campaign_dir} on http://{host}:{port} ({'bearer token required' if token else 'no token: loopback only'}); "
              f"schema at /openapi.json", flush=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
