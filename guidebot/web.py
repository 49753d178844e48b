"""`guidebot serve`: one ASGI server (starlette + uvicorn) for every webhook and callback.

Channels add their endpoints through `ROUTE_MODULES`: each module has
`routes(bot: Guidebot) -> list[starlette.routing.BaseRoute]` and, optionally, `lifespan(bot)` — an
async context manager started and stopped with the server (a Telegram application, a dispatcher …).
This list is the one place that shows every endpoint guidebot exposes.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from guidebot.app import Guidebot

log = logging.getLogger(__name__)

ROUTE_MODULES: tuple[str, ...] = (
    "guidebot.handlers.telegram.webhook",
    "guidebot.handlers.sms.routes",
)


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def build_web_app(bot: Guidebot, route_modules: tuple[str, ...] | None = None) -> Starlette:
    modules = [importlib.import_module(name) for name in (ROUTE_MODULES if route_modules is None else route_modules)]
    routes: list[BaseRoute] = [Route("/healthz", health)]
    for module in modules:
        routes.extend(module.routes(bot))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            for module in modules:
                if hasattr(module, "lifespan"):
                    await stack.enter_async_context(module.lifespan(bot))
            yield {}

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.bot = bot
    return app


def serve(bot: Guidebot, host: str, port: int) -> None:
    import uvicorn

    # uvicorn's access log would print query strings (Kannel sends the sender's number there).
    uvicorn.run(build_web_app(bot), host=host, port=port, access_log=False, log_level="info")
