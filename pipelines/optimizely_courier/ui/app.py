"""The `courier ui` web application (Starlette, Jinja2 templates, a little plain JavaScript; every asset in
the package, nothing fetched from elsewhere: the content security policy says so to the browser too).

Read-only: every route is a GET. The project is loaded per request (an edit to sources.yml shows at the
next page). No page renders a secret: every value a template writes passes through `redact`, which
replaces the courier credentials' secrets and the values of the variables sources.yml references.

With a token (required to listen beyond loopback), a request carries it as `Authorization: Bearer T`, as
the `courier_ui_token` cookie, or once as `?token=T`, which sets the cookie and redirects to the same page
without it (so the token does not stay in links and history).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from urllib.parse import urlencode

from optimizely_courier.config.sources import Project, load_project
from optimizely_courier.errors import CourierError

HERE = Path(__file__).parent
TOKEN_COOKIE = "courier_ui_token"
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
REFRESH_SECONDS = 5  # how often a page showing a run in progress reloads itself
SHORTEST_SECRET = 4  # shorter values of referenced variables are not masked (they would mask digits in numbers)


def create_app(root: Path, token: str | None = None, allowed_hosts: set[str] | None = None):  # noqa: ANN201
    """The application for the project at `root`.

    Args:
        token: required of every request when set.
        allowed_hosts: the Host names requests may carry (None: any); loopback servers allow only loopback
            names, so a page of another site cannot reach this one through a name it resolves to 127.0.0.1.
    """
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from optimizely_courier.ui import routes

    redact = Redactor(root, token)
    pages = routes.Pages(root, _templates(redact), redact)
    app = Starlette(routes=[
        Route("/", pages.overview),
        Route("/couriers/{name}", pages.courier),
        Route("/tables/{table}", pages.table),
        Route("/review", pages.review),
        Route("/experiments", pages.experiments),
        Route("/experiments/{name}", pages.experiment),
        Route("/experiments/{name}/results.json", pages.experiment_json),
        Route("/experiments/{name}/results.csv", pages.experiment_csv),
        Route("/favicon.ico", pages.favicon),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ], exception_handlers={404: pages.not_found, 405: pages.not_allowed})
    return Guard(app, token, allowed_hosts)


def secrets_of(project: Project, token: str | None = None) -> list[str]:
    """Every value no page may show: credential secrets, the values of the variables sources.yml references
    (webhook URLs with their tokens among them) and the UI's own token; longest first."""
    values = set(project.secrets())
    values.update(os.environ.get(name, "") for name in project.referenced_variables())
    values.add(token or "")
    return sorted((v for v in values if len(v) >= SHORTEST_SECRET), key=len, reverse=True)


class Redactor:
    """Masks secrets in text: a Jinja `finalize` for every value a template writes, and for downloads. The
    secrets are read again when sources.yml or .dlt/secrets.toml changes."""

    def __init__(self, root: Path, token: str | None) -> None:
        self.root, self.token = root, token
        self._seen: tuple | None = None
        self._secrets: list[str] = [token] if token else []

    def secrets(self) -> list[str]:
        stamp = tuple(path.stat().st_mtime_ns if path.exists() else None
                      for path in (self.root / "sources.yml", self.root / ".dlt" / "secrets.toml"))
        if stamp != self._seen:
            try:
                self._secrets = secrets_of(load_project(self.root), self.token)
            except CourierError:  # a page says what is wrong with sources.yml; nothing to mask from it
                self._secrets = [self.token] if self.token else []
            self._seen = stamp
        return self._secrets

    def __call__(self, value: object) -> object:
        if not isinstance(value, str) or not value:
            return value
        for secret in self.secrets():
            if secret in value:
                value = value.replace(secret, "***")
        return value


def _templates(redact: Redactor):  # noqa: ANN202 - Jinja2Templates
    import jinja2
    from starlette.templating import Jinja2Templates

    from optimizely_courier.ui import filters

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                     finalize=redact, undefined=jinja2.StrictUndefined)
    environment.filters.update(filters.FILTERS)
    environment.globals.update(refresh_seconds=REFRESH_SECONDS, urlencode=urlencode)
    return Jinja2Templates(env=environment)


class Guard:
    """ASGI middleware: the Host check, the token, and the security headers on every response."""

    def __init__(self, app, token: str | None, allowed_hosts: set[str] | None) -> None:  # noqa: ANN001
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, RedirectResponse

        request = Request(scope)
        if self.allowed_hosts is not None and _host(request.headers.get("host", "")) not in self.allowed_hosts:
            await PlainTextResponse("unknown host: open this page by its loopback address", 400)(
                scope, receive, with_headers)
            return
        if self.token is not None:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                response = RedirectResponse(request.url.path + (f"?{urlencode(rest)}" if rest else ""), 303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                await response(scope, receive, with_headers)
                return
            if not self._authorized(request):
                await PlainTextResponse("this courier ui needs its token: open it with ?token=<token> (the one "
                                        "`courier ui --token` was started with), or send `Authorization: Bearer "
                                        "<token>`", 401)(scope, receive, with_headers)
                return
        await self.app(scope, receive, with_headers)

    def _authorized(self, request) -> bool:  # noqa: ANN001 - a starlette Request
        header = request.headers.get("authorization", "")
        offered = [header[len("Bearer "):] if header.startswith("Bearer ") else "",
                   request.cookies.get(TOKEN_COOKIE, "")]
        return any(hmac.compare_digest(value.encode(), self.token.encode()) for value in offered if value)


def _host(header: str) -> str:
    """The host name of a Host header, without its port (`[::1]:8765` is `::1`)."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header
