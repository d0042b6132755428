"""The pages: each loads the project, gathers what it shows (views, tables, results, review) and renders a
template. A run in progress, or a process holding the warehouse, is a state a page shows (and reloads
itself until it ends), not an error; an unknown courier, table or experiment is a 404; a query string the
page does not take is a 400."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from optimizely_courier.config.sources import Project, load_project
from optimizely_courier.errors import CourierError
from optimizely_courier.ui.access import Unavailable
from optimizely_courier.ui.review import BadRef
from optimizely_courier.ui.tables import BadQuery

STATIC = Path(__file__).parent / "static"


class Pages:
    """The endpoints of the application, for the project at `root`."""

    def __init__(self, root: Path, templates, redact: Callable[[object], object]) -> None:  # noqa: ANN001
        self.root, self.templates, self.redact = root, templates, redact

    def _render(self, request: Request, template: str, http_status: int = 200, **context: Any) -> Response:  # noqa: ANN401
        context.setdefault("refresh", False)
        context.setdefault("project_dir", self.root.name)
        return self.templates.TemplateResponse(request, template, context, status_code=http_status)

    def _problem(self, request: Request, exc: CourierError, status: int, title: str) -> Response:
        """A page that says what is wrong (the error's one line), or that a run is writing the warehouse."""
        if isinstance(exc, Unavailable):
            from optimizely_courier.runs.status import progress_text

            runs = [{**run, "text": progress_text(run)} for run in exc.runs]
            return self._render(request, "unavailable.html", title=title, message=str(exc), runs=runs, refresh=True)
        return self._render(request, "problem.html", http_status=status, title=title, message=str(exc))

    def _project(self) -> Project:
        return load_project(self.root)

    def overview(self, request: Request) -> Response:
        from optimizely_courier.ui.views import overview

        try:
            found = overview(self._project())
        except CourierError as exc:
            return self._problem(request, exc, 500, "Overview")
        return self._render(request, "overview.html", title="Overview", refresh=found["running"], **found)

    def courier(self, request: Request) -> Response:
        from optimizely_courier.ui.views import courier_view

        name = request.path_params["name"]
        try:
            project = self._project()
            if name not in project.couriers:
                return self._problem(request, CourierError(f"no courier {name!r}; couriers: "
                                                           f"{', '.join(project.couriers)}"), 404, "Courier")
            found = courier_view(project, name)
        except CourierError as exc:
            return self._problem(request, exc, 500, f"Courier {name}")
        return self._render(request, "courier.html", title=f"Courier {name}", refresh=found["running"], **found)

    def table(self, request: Request) -> Response:
        from optimizely_courier.feeds.feed import read_feeds
        from optimizely_courier.ui.tables import NotFound, RowQuery, table_view

        table = request.path_params["table"]
        try:
            query = RowQuery.parse(dict(request.query_params))
            project = self._project()
            found = table_view(project, table, read_feeds(project.root)[0], query)
        except BadQuery as exc:
            return self._problem(request, exc, 400, table)
        except NotFound as exc:
            return self._problem(request, exc, 404, table)
        except CourierError as exc:
            return self._problem(request, exc, 500, table)
        return self._render(request, "table.html", title=table, **found)

    def review(self, request: Request) -> Response:
        from optimizely_courier.ui.review import review_view

        base = request.query_params.get("base") or None
        try:
            found = review_view(self._project(), base)
        except BadRef as exc:
            return self._problem(request, exc, 400, "Feed review")
        except CourierError as exc:
            return self._problem(request, exc, 409, "Feed review")  # not a repository, no such ref
        return self._render(request, "review.html", title="Feed review", requested=base or "", **found)

    def experiments(self, request: Request) -> Response:
        from optimizely_courier.ui.results import experiments_list

        try:
            found = experiments_list(self._project())
        except CourierError as exc:
            return self._problem(request, exc, 500, "Experiments")
        return self._render(request, "experiments.html", title="Experiments", experiments=found)

    def _experiment(self, request: Request) -> tuple[Project, str, str | None]:
        """The project, the experiment and the segment a request names (NotFound, BadQuery)."""
        from optimizely_courier.experiments.definition import load_experiments
        from optimizely_courier.ui.tables import NotFound

        project, name = self._project(), request.path_params["name"]
        segment = request.query_params.get("segment") or None
        experiments = {e.id: e for e in load_experiments(project.root)}
        if name not in experiments:
            raise NotFound(f"no experiment {name!r}; experiments: {', '.join(sorted(experiments)) or 'none'}")
        if segment is not None and segment not in experiments[name].segments:
            raise BadQuery(f"experiment {name!r} has no segment {segment!r}; segments: "
                           f"{', '.join(experiments[name].segments) or 'none'}")
        return project, name, segment

    def experiment(self, request: Request) -> Response:
        from optimizely_courier.ui.results import experiment_view
        from optimizely_courier.ui.tables import NotFound

        name = request.path_params["name"]
        try:
            project, name, segment = self._experiment(request)
            found = experiment_view(project, name, segment)
        except NotFound as exc:
            return self._problem(request, exc, 404, f"Experiment {name}")
        except BadQuery as exc:
            return self._problem(request, exc, 400, f"Experiment {name}")
        except CourierError as exc:  # no results built yet, say: the page says what to run
            return self._problem(request, exc, 409, f"Experiment {name}")
        return self._render(request, "experiment.html", title=f"Experiment {name}", name=name, segment=segment,
                            query=f"?segment={segment}" if segment else "", **found)

    def _download(self, request: Request, kind: str) -> Response:
        from optimizely_courier.text import to_json
        from optimizely_courier.ui.results import results_csv, results_of
        from optimizely_courier.ui.tables import NotFound

        try:
            project, name, segment = self._experiment(request)
            results = results_of(project, name, segment)
        except NotFound as exc:
            return PlainTextResponse(str(self.redact(str(exc))), 404)
        except BadQuery as exc:
            return PlainTextResponse(str(self.redact(str(exc))), 400)
        except CourierError as exc:
            retry = {"retry-after": "5"} if isinstance(exc, Unavailable) else {}
            return PlainTextResponse(str(self.redact(str(exc))), 503 if retry else 409, headers=retry)
        suffix = f"-{segment}" if segment else ""
        body = to_json(results) + "\n" if kind == "json" else results_csv(results)
        return Response(self.redact(body), media_type="application/json" if kind == "json" else "text/csv",
                        headers={"content-disposition": f'attachment; filename="{name}{suffix}-results.{kind}"'})

    def experiment_json(self, request: Request) -> Response:
        return self._download(request, "json")

    def experiment_csv(self, request: Request) -> Response:
        return self._download(request, "csv")

    def favicon(self, request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self._render(request, "problem.html", http_status=404, title="Not found",
                            message=f"no page at {request.url.path}")

    async def not_allowed(self, request: Request, exc: Exception) -> Response:
        return PlainTextResponse("this application is read-only: GET only", 405, headers={"allow": "GET, HEAD"})
