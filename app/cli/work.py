"""Commands for the work itself: synthetic experts doing a batch's open tasks over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli.common import BatchOption, prefect_api, require_batch, resources
from nightshift.platform.errors import NightshiftError


def simulate(
    batch: BatchOption,
    url: Annotated[
        str | None, typer.Option(help="A running `nightshift serve`; unset starts one here for the run.")
    ] = None,
    experts: Annotated[int | None, typer.Option(help="Play at most this many of the batch's experts.")] = None,
    concurrency: Annotated[int, typer.Option(help="Experts working at once.")] = 100,
    time_scale: Annotated[float, typer.Option(help="Seconds waited per simulated second of work.")] = 1 / 600,
    tasks_at_once: Annotated[int, typer.Option(help="Tasks each expert keeps open at once.")] = 1,
    until_done: Annotated[
        bool,
        typer.Option(
            "--until-done",
            help="Run dispatch, simulated work, review and adjudication round after round (the real flows, "
            "answers written in bulk) until the batch passes or is blocked; print its cost and accuracy.",
        ),
    ] = False,
    max_rounds: Annotated[int, typer.Option(help="With --until-done: rounds before calling it blocked.")] = 20,
) -> None:
    """Synthetic experts do a batch's open tasks through the expert API, over HTTP."""
    api_ready = prefect_api()
    require_batch(batch)
    if until_done:
        from flows.simulate import UntilDoneParams, until_done_flow

        with api_ready():
            done = until_done_flow(UntilDoneParams(batch_id=batch, max_rounds=max_rounds))
        typer.echo(
            f"batch {batch}: {done.batch_status} after {done.rounds} rounds; {done.delivered_items} items delivered,"
            f" accuracy {done.accuracy:.3f} against the truth, {done.assignments_per_item:.2f} assignments and"
            f" {done.pay_per_item:.2f} pay per delivered item"
        )
        if done.batch_status != "passed":
            raise NightshiftError(f"batch {batch} is blocked: {done.batch_status} after {done.rounds} rounds")
        return
    from flows.simulate import SimulateParams, simulate_flow

    def run(base_url: str) -> Any:
        params = SimulateParams(
            batch_id=batch,
            url=base_url,
            experts=experts,
            concurrency=concurrency,
            time_scale=time_scale,
            tasks_at_once=tasks_at_once,
        )
        with api_ready():
            return simulate_flow(params)

    if url:
        report = run(url)
    else:
        from app.web import ServiceThread, create_app

        with ServiceThread(create_app(resources())) as server:
            report = run(server.url)
    typer.echo(
        f"batch {batch}: {report.experts} experts, {report.submitted} submissions, {report.refused} refused, "
        f"{report.closed} closed meanwhile, {report.seconds:.1f} s"
    )
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    if report.errors:
        raise NightshiftError(f"{len(report.errors)} simulated experts stopped on an error; first: {report.errors[0]}")
