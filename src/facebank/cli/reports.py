"""What the CLI prints after an enrollment (local, Ray or a scan) and after a Ctrl-C."""

from __future__ import annotations

import typer


def echo_enroll_report(report, gallery: str, engine: str = "") -> None:
    """Per-file problems on stderr, then one summary line (shared by every enrollment engine)."""
    for path, reason in report.problems:
        typer.echo(f"  skipped {path}: {reason}", err=True)
    for given, known in report.merged_names:
        typer.echo(f"  {given}: enrolled as {known!r} (names that differ only by case are one person)",
                   err=True)
    for path, first in report.duplicates:
        typer.echo(f"  copy {path}: the same photo as {first}, enrolled once", err=True)
    copies = f", {len(report.duplicates)} copies of photos enrolled once" if report.duplicates else ""
    typer.echo(
        f"enrolled {report.photos_enrolled} photos ({report.faces_added} faces) of {report.people} people "
        f"in {report.seconds:.1f} s ({report.photos_per_second:.1f} photos/s){engine}; "
        f"{report.photos_skipped_known} already known{copies}, {len(report.problems)} problems. "
        f"Gallery: {gallery}"
    )


def echo_interrupted(report, gallery: str) -> None:
    """After Ctrl-C: what was saved, and that a rerun finishes the job."""
    if report is not None:
        echo_enroll_report(report, gallery)
        saved = f"the {report.photos_enrolled} photos enrolled before it are saved in {gallery}"
    else:
        saved = f"the photos enrolled before it are saved in {gallery}"
    typer.echo(f"interrupted: {saved}; run the same command again to finish (photos already enrolled "
               "are skipped, problems are reported again)", err=True)
