"""`courier ui`: serve the read-only web pages of the project (the `ui` extra)."""

from __future__ import annotations

import click

from optimizely_courier.cli.common import current_project

TOKEN_ENV = "COURIER_UI_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1 or localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Beyond loopback, --token is required.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--token", envvar=TOKEN_ENV, metavar="T",
              help=f"Require this token of every request (also from ${TOKEN_ENV}): the `courier_ui_token` cookie, "
                   "`Authorization: Bearer T`, or `?token=T` once (it sets the cookie).")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """Serve read-only web pages of the project: couriers, groups, alerts, runs, domain tables,
    feed review and experiment results with charts.

    Nothing on the pages is fetched from elsewhere, no page shows a secret, and no page holds the
    warehouse between requests: while a courier run or a `dbt build` writes it, pages show the run in
    progress and reload themselves.

    \b
    Examples:
      courier ui                                   # http://127.0.0.1:8765/
      courier ui --port 9000
      COURIER_UI_TOKEN=s3cret courier ui --host 0.0.0.0
    """
    if not is_loopback(host) and not token:
        raise click.UsageError(f"--host {host} listens beyond this machine: give --token T (or set {TOKEN_ENV}); "
                               "every request then needs it")
    from optimizely_courier.extras import require_extra

    require_extra("ui")
    import uvicorn

    from optimizely_courier.ui.app import create_app

    project = current_project(ctx)  # a project directory, checked before anything listens
    allowed = {"localhost", "127.0.0.1", "::1", host.strip("[]")} if is_loopback(host) else None
    app = create_app(project.root, token, allowed)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"courier ui for {project.root}: http://{shown}:{port}/ (read-only; Ctrl-C stops it)")
    if token:
        click.echo("every request needs the token: open the page once with ?token=<token>")
    # no access log: a request's query string may hold the token
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning", access_log=False)
