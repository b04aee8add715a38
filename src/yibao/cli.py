"""The `yibao` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from yibao.config import Settings

app = typer.Typer(help="yibao: an open medical-insurance information platform.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
catalog_app = typer.Typer(help="National catalogues.", no_args_is_help=True)
keys_app = typer.Typer(help="Institutions' gateway keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog")
app.add_typer(keys_app, name="keys")
ledger_app = typer.Typer(help="The settlement ledger.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy parameters.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(policy_app, name="policy")
console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console)


def _database(settings: Settings):  # type: ignore[no-untyped-def]
    from yibao.store.db import Database

    return Database.from_settings(settings)


def _seed(settings: Settings, people: int, seed: int) -> None:
    from yibao.demo.generator import generate

    db = _database(settings)
    with _progress() as progress, db.unit_of_work() as session:
        task = progress.add_task(f"demo region, {people:,} people", total=people)
        report = generate(session, people=people, seed=seed, progress=lambda n: progress.advance(task, n), commit_batches=True)
    db.dispose()
    console.print(f"[green]seeded[/] {report.people:,} people in {report.households:,} households, {report.enrolments:,} enrolments, "
                  f"{report.accounts:,} accounts, {report.contributions:,} contributions, {report.institutions} institutions, "
                  f"{report.catalogue_rows} catalogue rows")
    typer.echo(f"sample institution {report.sample['fixmedins_code']}: its secret is shown by `yibao keys show {report.sample['fixmedins_code']}`")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    from yibao.store.migrate import upgrade

    settings = Settings()
    db = _database(settings)
    upgrade(db.engine)
    console.print(f"schema up to date on {db.engine.url.render_as_string(hide_password=True)}")
    db.dispose()


@app.command()
def demo(people: Annotated[int, typer.Option(help="insured people to generate")] = 10_000,
         seed: Annotated[int | None, typer.Option(help="generator seed (same seed, same region)")] = None) -> None:
    """Wipe the database and seed a synthetic region."""
    from yibao.store.migrate import reset

    settings = Settings()
    db = _database(settings)
    reset(db.engine)
    db.dispose()
    _seed(settings, people, settings.demo_seed if seed is None else seed)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(help="worker processes: keep 1 on SQLite (one writer at a time), one per core on PostgreSQL")] = 1,
          demo: Annotated[bool, typer.Option("--demo", help="seed a new database with a synthetic demo region (also YIBAO_DEMO=1)")] = False,
          people: Annotated[int, typer.Option(help="people to seed when --demo meets a new database")] = 10_000) -> None:
    """Run the HTTP server. A new database gets the schema; only with --demo is it seeded with demo data."""
    import os

    import uvicorn

    from yibao.deployment.service import DEMO, mode_of
    from yibao.observability import configure_logging
    from yibao.store.migrate import is_empty, upgrade

    demo = demo or os.environ.get("YIBAO_DEMO", "") == "1"
    settings = Settings()
    db = _database(settings)
    if workers > 1 and db.is_sqlite:
        console.print(f"[yellow]{workers} workers on SQLite: every call writes and SQLite has one writer, so extra workers "
                      "mostly wait for each other (docs/performance.md); one is faster[/yellow]")
    fresh = is_empty(db.engine)
    upgrade(db.engine)
    mode = mode_of(db.engine)
    db.dispose()
    if fresh and demo:
        console.print("new database: seeding demo data")
        _seed(settings, people, settings.demo_seed)
        mode = DEMO
    elif fresh:
        console.print("new production database: nothing seeded. Add the first institution, operator and people:\n"
                      "  yibao institution add H37010000001 --name 济南市第一人民医院 --admdvs 370100 --level 3\n"
                      "  yibao operator add H37010000001 0001 --name 收费员\n"
                      "  yibao people import people.csv\n"
                      "(or start again with --demo for a synthetic demo region)")
    elif demo and mode != DEMO:
        console.print("[yellow]--demo ignored: this database holds production data; demo data only goes into a new database[/yellow]")
    if mode == DEMO:
        console.print("[yellow]demo mode: demo data, the demo face checker and SQLite synchronous=NORMAL (an acknowledged "
                      "settlement can be lost if the machine loses power); never for real people[/yellow]")
    configure_logging(json=settings.log_json)
    console.print(f"yibao on http://{host}:{port}  (gateway POST /fsi/api/rsfComIfsService/callService, OpenAPI /schema)")
    uvicorn.run("yibao.app:create_app_from_env", factory=True, host=host, port=port, workers=workers, access_log=False, log_level="warning")


@catalog_app.command("import")
def catalog_import(file: Path, name: Annotated[str | None, typer.Option(help="version name")] = None) -> None:
    """Import drugs, service items or consumables from CSV or Excel as a new catalogue version."""
    from yibao.codes import importer
    from yibao.core.errors import YibaoError

    if not file.exists():
        console.print(f"[red]{file} does not exist[/]")
        raise typer.Exit(2)
    settings = Settings()
    db = _database(settings)
    try:
        rows = list(importer.read_rows(file))
    except YibaoError as error:
        console.print(f"[red]{error.message}[/]")
        raise typer.Exit(2) from None
    good, rejected, count = importer.validate(rows)
    report = importer.ImportReport(rows_read=count, rejected=rejected)
    if good:
        with _progress() as progress, db.unit_of_work() as session:
            task = progress.add_task(f"importing {file.name}", total=len(good))
            version = importer.new_version(session, name or file.name, str(file))
            version.rows_rejected = len(rejected)
            report.ver = version.ver
            report.added, report.changed, report.unchanged = importer.apply(session, good, version, lambda n: progress.advance(task, n))
    db.dispose()
    console.print(f"read {report.rows_read} rows: [green]{report.added} added[/], {report.changed} changed, {report.unchanged} unchanged, "
                  f"[red]{len(report.rejected)} rejected[/]" + (f"; version {report.ver}" if report.ver else ""))
    if report.rejected:
        table = Table("row", "column", "reason", title="rejected rows")
        for r in report.rejected[:200]:
            table.add_row(str(r.row), r.column, r.reason)
        console.print(table)
        raise typer.Exit(1)


@keys_app.command("show")
def keys_show(fixmedins_code: str) -> None:
    """Print an institution's gateway access keys and secrets (local administration only)."""
    from sqlalchemy import select

    from yibao.gateway.models import GatewayClient

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        clients = session.scalars(select(GatewayClient).where(GatewayClient.fixmedins_code == fixmedins_code)).all()
        for c in clients:
            typer.echo(f"access_key {c.access_key}  secret {c.secret}  {'active' if c.active else 'revoked'}")
    if not clients:
        console.print(f"[red]no keys for {fixmedins_code}[/]")
        raise typer.Exit(1)


@keys_app.command("rotate")
def keys_rotate(fixmedins_code: str) -> None:
    """Give an institution a new secret; the old one stops working at once."""
    from sqlalchemy import select

    from yibao.core import crypto
    from yibao.gateway.models import GatewayClient

    db = _database(Settings())
    with db.unit_of_work() as session:
        client = session.scalar(select(GatewayClient).where(GatewayClient.fixmedins_code == fixmedins_code, GatewayClient.active))
        if client is None:
            console.print(f"[red]no active key for {fixmedins_code}[/]")
            raise typer.Exit(1)
        client.secret = crypto.new_secret()
        typer.echo(f"access_key {client.access_key}  new secret {client.secret}")


@app.command()
def call(infno: str, input_json: Annotated[str, typer.Argument(help="the transaction's input object as JSON")],
         fixmedins_code: Annotated[str, typer.Option(help="calling institution")] = "H37010000001",
         url: str = "http://127.0.0.1:8000", secret: Annotated[str | None, typer.Option(help="defaults to the key in the local database")] = None,
         admvs: Annotated[str, typer.Option(help="mdtrtarea_admvs")] = "370100") -> None:
    """Sign in (9001) and send one signed transaction; print both messages."""
    from yibao.client import CounterClient, pretty

    if secret is None:
        from sqlalchemy import select

        from yibao.gateway.models import GatewayClient

        db = _database(Settings())
        with db.unit_of_work(write=False) as session:
            secret = session.scalar(select(GatewayClient.secret).where(GatewayClient.fixmedins_code == fixmedins_code, GatewayClient.active))
        if secret is None:
            console.print(f"[red]no key for {fixmedins_code} in the local database; pass --secret[/]")
            raise typer.Exit(1)
    client = CounterClient(url, fixmedins_code, secret, mdtrtarea_admvs=admvs)
    signed = client.sign_in()
    if signed.get("infcode") != 0:
        print(pretty(signed))
        raise typer.Exit(1)
    request = client.envelope(infno, json.loads(input_json))
    print("→", pretty(request))
    answer = client.send(request)
    print("←", pretty(answer))
    if answer.get("infcode") != 0:
        raise typer.Exit(1)


@app.command()
def simulate(visits: Annotated[int, typer.Option(help="visits to simulate")] = 1000,
             url: str = "http://127.0.0.1:8000", region: str = "370100", seed: int = 1,
             people: Annotated[int, typer.Option(help="insured people to draw patients from")] = 2000) -> None:
    """Send random counter traffic (outpatient, inpatient, pharmacy, reversals) through a running server's gateway."""
    import random
    from decimal import Decimal

    from sqlalchemy import select

    from yibao.client import CounterClient
    from yibao.demo import traffic
    from yibao.gateway.models import GatewayClient

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        codes = traffic.institutions(session, region)
        secrets = dict(session.execute(select(GatewayClient.fixmedins_code, GatewayClient.secret)
                                       .where(GatewayClient.fixmedins_code.in_(codes), GatewayClient.active)).tuples().all())
        candidates = [p for p in traffic.candidates(session, people * 2, random.Random(seed)) if p.admdvs == region][:people]
        items = traffic.catalogue(session)
    db.dispose()
    clients = {}
    for code in codes:
        client = CounterClient(url, code, secrets[code], mdtrtarea_admvs=region)
        if client.sign_in().get("infcode") != 0:
            console.print(f"[red]{code} could not sign in[/]")
            raise typer.Exit(1)
        clients[code] = client
    with _progress() as progress:
        task = progress.add_task("visits", total=visits)
        report = traffic.run(clients, candidates, items, visits, seed, lambda n: progress.advance(task, n))
    console.print(f"outpatient {report.outpatient}, inpatient {report.inpatient}, pharmacy {report.pharmacy}, "
                  f"reversals {report.reversals}, refused {report.refused}; billed {Decimal(report.settled_fen) / 100:,.2f} 元")
    for error in report.errors[:5]:
        console.print(f"[yellow]refused[/] {error}")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove that settlements balance, year-to-date totals equal their postings and accounts add up."""
    from yibao.ledger.check import check

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        report = check(session)
    db.dispose()
    console.print(f"{report.settlements:,} settlements, {report.entries:,} ledger entries, {report.year_rows:,} year totals, "
                  f"{report.accounts:,} accounts checked")
    if report.ok:
        console.print("[green]ledger check passed[/]")
        return
    for line in report.problems:
        console.print(f"[red]✗[/] {line}")
    raise typer.Exit(1)


@policy_app.command("show")
def policy_show(region: str, insutype: str, day: Annotated[str, typer.Argument(help="yyyy-mm-dd")],
                category: Annotated[str, typer.Option(help="in_service, retired (employees) or all")] = "in_service") -> None:
    """Print the parameters in force for a region, insurance type and day."""
    from dataclasses import fields

    from yibao.core import clock
    from yibao.core.errors import YibaoError
    from yibao.policy.parameters import bundled
    from yibao.policy.service import snapshot

    try:
        on = clock.parse_date(day, "day")
        book = bundled()
        policy = snapshot(book, region, insutype, category, on)
    except YibaoError as error:
        console.print(f"[red]{error.message}[/]")
        raise typer.Exit(2) from None
    table = Table("parameter", "value", title=f"policy of {region}, insutype {insutype} ({policy.category}), on {on}")
    for f in fields(policy):
        value = getattr(policy, f.name)
        table.add_row(f.name, _policy_text(f.name, value))
    console.print(table)
    for (admdvs, family), reference in sorted(book.references.items()):
        if admdvs == region:
            console.print(f"[dim]{family}.yaml: {reference}[/]")


def _policy_text(name: str, value: object) -> str:
    from decimal import Decimal

    def money(fen: int) -> str:
        return f"{Decimal(fen) / 100:,.2f} 元"

    if isinstance(value, dict):
        return ", ".join(f"{k}: {_policy_text(name, v)}" for k, v in value.items())
    if isinstance(value, tuple):
        return "; ".join(f"from {money(t[0])} {t[1] * 100:.0f}%" for t in value)
    if isinstance(value, Decimal):
        return f"{value * 100:.0f}%"
    if isinstance(value, int) and not isinstance(value, bool) and name not in ("admdvs", "insutype"):
        return money(value)
    return str(value)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
