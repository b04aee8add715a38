"""The `yibao` command."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import click
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
institution_app = typer.Typer(help="Designated institutions (hospitals and pharmacies).", no_args_is_help=True)
operator_app = typer.Typer(help="Operators who sign in (9001) for an institution.", no_args_is_help=True)
people_app = typer.Typer(help="Insured people.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail: `yibao audit` lists the latest events (filters below).", invoke_without_command=True)
app.add_typer(institution_app, name="institution")
app.add_typer(operator_app, name="operator")
app.add_typer(people_app, name="people")
app.add_typer(audit_app, name="audit")
insurer_app = typer.Typer(help="保医通: commercial insurers that read settlements under a person's authorisation.", no_args_is_help=True)
app.add_typer(insurer_app, name="insurer")
ledger_app = typer.Typer(help="The settlement ledger.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy parameters.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
maternity_app = typer.Typer(help="Maternity allowances (生育津贴).", no_args_is_help=True)
app.add_typer(maternity_app, name="maternity")
app.add_typer(policy_app, name="policy")
console_app = typer.Typer(help="The vendors' console (/console/): platform staff who may read every institution's messages.",
                          no_args_is_help=True)
app.add_typer(console_app, name="console")
bills_app = typer.Typer(help="Medical e-bills (医疗收费电子票据, docs/bills.md).", no_args_is_help=True)
app.add_typer(bills_app, name="bills")
drg_app = typer.Typer(help="DRG/DIP: grouped inpatient cases (4101) and what the funds pay hospitals for them.", no_args_is_help=True)
app.add_typer(drg_app, name="drg")
rx_app = typer.Typer(help="E-prescriptions (docs/prescriptions.md): institutions' SM2 keys and the platform's.", no_args_is_help=True)
app.add_typer(rx_app, name="prescription")
console = Console()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console)


class CliError(Exception):
    """A reason to stop, printed as one line (no traceback)."""


def _database(settings: Settings, *, must_exist: bool = True):
    """The configured database. Commands that read or administer one refuse a SQLite file that is not there, rather
    than create an empty database wherever they happen to run (only serve, db upgrade and demo create one)."""
    from sqlalchemy.engine import make_url

    from yibao.store.db import Database
    from yibao.store.metadata import collect

    collect()  # every table, so foreign keys between domains resolve when the ORM flushes

    url = make_url(settings.database_url)
    if must_exist and url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.exists():
            raise CliError(f"no database at {path.resolve()}: run this where you ran `yibao serve`, or set YIBAO_DATABASE_URL "
                           "(`yibao db upgrade` creates a new one)")
    db = Database.from_settings(settings)
    if must_exist:
        from yibao.store.migrate import is_current

        if not is_current(db.engine):
            db.dispose()
            raise CliError(f"the database at {url.render_as_string(hide_password=True)} has no schema or an old one: "
                           "run `yibao db upgrade`")
    return db


def _grace(text: str) -> timedelta:
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text or "")
    if not match:
        raise CliError(f"--grace '{text}' is not a duration: write 0, 30m, 24h or 7d")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}[match.group(2)]
    return timedelta(seconds=int(match.group(1)) * unit)


def _seed(settings: Settings, people: int, seed: int) -> None:
    from yibao.demo.generator import generate

    db = _database(settings)
    with _progress() as progress, db.unit_of_work() as session:
        task = progress.add_task(f"demo region, {people:,} people", total=people)
        report = generate(session, people=people, seed=seed, progress=lambda n: progress.advance(task, n), commit_batches=True,
                          only=tuple(filter(None, settings.demo_regions.split(","))))
    db.dispose()
    if db.is_sqlite and db.engine.url.database:
        import sqlite3

        # the seed went through the write-ahead log: copy it back and cut the log to nothing, not leave gigabytes beside the database
        with sqlite3.connect(db.engine.url.database, timeout=60) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    console.print(f"[green]seeded[/] {report.people:,} people in {report.households:,} households, {report.enrolments:,} enrolments, "
                  f"{report.accounts:,} accounts, {report.contributions:,} contributions, {report.institutions} institutions, "
                  f"{report.catalogue_rows} catalogue rows")
    typer.echo(f"sample institution {report.sample['fixmedins_code']}: its secret is shown by "
               f"`yibao keys show {report.sample['fixmedins_code']}`")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    from yibao.bootstrap import seed_reference
    from yibao.store.migrate import upgrade

    settings = Settings()
    db = _database(settings, must_exist=False)
    upgrade(db.engine)
    with db.unit_of_work() as session:
        seed_reference(session)  # national code tables and regions (idempotent)
    console.print(f"schema up to date on {db.engine.url.render_as_string(hide_password=True)}")
    db.dispose()


@db_app.command("partitions")
def db_partitions(year: Annotated[list[int] | None, typer.Option(help="make this year's partitions (repeatable); "
                                                                       "without it: this year and the next")] = None) -> None:
    """PostgreSQL: settlements and ledger postings are partitioned by year; make a year's partitions (rows of that year
    in the DEFAULT partition move into them) and show which years have one."""
    from yibao.store.partitions import describe, ensure_years

    settings = Settings()
    db = _database(settings)
    if db.is_sqlite:
        console.print("SQLite keeps settlements in one table: nothing to partition")
        db.dispose()
        return
    for name in ensure_years(db.engine, year or None):
        console.print(f"made {name}")
    for table, state in describe(db.engine).items():
        console.print(f"{table}: years {', '.join(map(str, state['years']))}; rows in {table}_default: {state['rows_in_default']}")
    db.dispose()


@app.command()
def demo(people: Annotated[int, typer.Option(help="insured people to generate")] = 10_000,
         seed: Annotated[int | None, typer.Option(help="generator seed (same seed, same region)")] = None) -> None:
    """Wipe the database and seed a synthetic region."""
    from yibao.store.migrate import reset

    settings = Settings()
    db = _database(settings, must_exist=False)
    reset(db.engine)
    db.dispose()
    _seed(settings, people, settings.demo_seed if seed is None else seed)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(help="worker processes: keep 1 on SQLite (one writer at a time), "
                                                    "one per core on PostgreSQL")] = 1,
          demo: Annotated[bool, typer.Option("--demo", help="seed a new database with a synthetic demo region "
                                                           "(also YIBAO_DEMO=1)")] = False,
          people: Annotated[int, typer.Option(help="people to seed when --demo meets a new database")] = 10_000) -> None:
    """Run the HTTP server. A new database gets the schema; only with --demo is it seeded with demo data."""
    import uvicorn

    from yibao.deployment.service import DEMO, mode_of
    from yibao.observability import configure_logging
    from yibao.store.migrate import is_empty, upgrade

    demo = demo or os.environ.get("YIBAO_DEMO", "") == "1"
    settings = Settings()
    db = _database(settings, must_exist=False)
    if workers > 1 and db.is_sqlite:
        console.print(f"[yellow]{workers} workers on SQLite: every call writes and SQLite has one writer, so extra workers "
                      "mostly wait for each other (docs/performance.md); one is faster[/yellow]")
    fresh = is_empty(db.engine)
    upgrade(db.engine)
    mode = mode_of(db.engine)
    console.print(f"database {db.engine.url.render_as_string(hide_password=True)} ({mode})")
    if fresh and demo:
        db.dispose()
        console.print("new database: seeding demo data")
        _seed(settings, people, settings.demo_seed)
        mode = DEMO
    else:
        from yibao.bootstrap import seed_reference

        with db.unit_of_work() as session:
            seed_reference(session)  # national code tables and regions: idempotent
        db.dispose()
    if fresh and not demo and settings.federation_role != "hub":
        console.print("new production database: national code tables loaded, no institutions or people. Add them:\n"
                      "  yibao institution add H37010000001 --name 济南市第一人民医院 --admdvs 370100 --level 3\n"
                      "  yibao operator add H37010000001 0001 --name 收费员\n"
                      "  yibao people import people.csv\n"
                      "(or start again with --demo for a synthetic demo region)")
    if not fresh and demo and mode != DEMO:
        console.print("[yellow]--demo ignored: this database holds production data; demo data only goes into a new database[/yellow]")
    if mode == DEMO:
        console.print("[yellow]demo mode: demo data and the demo face checker"
                      + (" and SQLite synchronous=NORMAL (an acknowledged settlement can be lost if the machine loses power)"
                         if db.is_sqlite else "") + "; never for real people[/yellow]")
    configure_logging(json=settings.log_json)
    console.print(f"yibao on http://{host}:{port}  (gateway POST /fsi/api/rsfComIfsService/callService, OpenAPI /schema)")
    # The client's address decides front-server trust, per-IP limits and the audit trail: forwarded-for headers are believed
    # only from the proxies named in YIBAO_TRUSTED_PROXIES (uvicorn would otherwise believe them from 127.0.0.1).
    trusted = os.environ.get("YIBAO_TRUSTED_PROXIES", "").strip()
    uvicorn.run("yibao.app:create_app_from_env", factory=True, host=host, port=port, workers=workers, access_log=False, log_level="warning",
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None)


@catalog_app.command("import")
def catalog_import(file: Annotated[Path, typer.Argument(help="CSV (UTF-8) or .xlsx with a header row; columns below")],
                   name: Annotated[str | None, typer.Option(help="version name")] = None) -> None:
    """Import drugs, herbal pieces, service items or consumables as a new catalogue version.

    Required columns: med_list_codg (the national code), med_list_name, list_type (101 Western/Chinese patent drugs, 102 herbal
    pieces, 103/104 preparations, 201 service items, 301 consumables), med_chrgitm_type (01–14), chrgitm_lv (01 甲, 02 乙, 03 丙),
    begndate (yyyy-MM-dd). Optional: selfpay_prop (0–1; default by level), pric_uplmt_amt (price cap, yuan), lmt_gend (1/2),
    lmt_age_min, lmt_age_max, lmt_hosp_lv (1–3), rx_flag (1 prescription only), spec, dosform, pacunt, prodentp_name, enddate, memo.

    Rows that fail are listed (row, column, reason) and not imported; the good rows land together as one version, compared with the
    version in force: new codes added, changed ones replaced, unchanged ones skipped.
    """
    from yibao.codes import importer

    if not file.exists():
        raise CliError(f"{file} does not exist")
    settings = Settings()
    db = _database(settings)
    rows = list(importer.read_rows(file))
    good, rejected, count = importer.validate(rows)
    report = importer.ImportReport(rows_read=count, rejected=rejected)
    rejected_rows = len({r.row for r in rejected})
    if good:
        with _progress() as progress, db.unit_of_work() as session:
            task = progress.add_task(f"importing {file.name}", total=len(good))
            version = importer.new_version(session, name or file.name, str(file))
            version.rows_rejected = rejected_rows
            report.ver = version.ver
            report.added, report.changed, report.unchanged = importer.apply(session, good, version, lambda n: progress.advance(task, n))
    db.dispose()
    console.print(f"read {report.rows_read} rows, {rejected_rows} rejected")
    if report.ver:
        console.print(f"[green]committed version {report.ver}[/]: {report.added} added, {report.changed} changed, "
                      f"{report.unchanged} unchanged")
    else:
        console.print("[yellow]nothing committed[/]: no row was valid")
    _print_rejected(report.rejected)
    if report.rejected:
        raise typer.Exit(1)


@keys_app.command("show")
def keys_show(fixmedins_code: str) -> None:
    """Print an institution's gateway access keys and secrets (local administration only; never logged)."""
    from yibao.gateway import keys

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        found = keys.of_institution(session, fixmedins_code)
    db.dispose()
    if not found:
        raise CliError(f"no keys for {fixmedins_code}")
    for k in found:
        grace = f"  previous secret valid until {k.previous_valid_until:%Y-%m-%d %H:%M:%S}" if k.previous_valid_until else ""
        typer.echo(f"access_key {k.access_key}  secret {k.secret}  {'active' if k.active else 'revoked'}  schemes {k.schemes}{grace}")


@keys_app.command("rotate")
def keys_rotate(fixmedins_code: str,
                grace: Annotated[str, typer.Option(help="how long the old secret keeps working: "
                                                        "0 (revoke at once), 30m, 24h, 7d")] = "24h") -> None:
    """Give an institution's key a new secret; the old one keeps working for the grace period, then stops."""
    from yibao.gateway import keys

    period = _grace(grace)
    db = _database(Settings())
    with db.unit_of_work() as session:
        view = keys.rotate(session, fixmedins_code, grace=period)
    db.dispose()
    typer.echo(f"access_key {view.access_key}  new secret {view.secret}")
    if view.previous_valid_until:
        console.print(f"the previous secret works until {view.previous_valid_until:%Y-%m-%d %H:%M:%S} (Beijing time); "
                      "switch the counters over before then")
    else:
        console.print("the previous secret no longer works")


@keys_app.command("schemes")
def keys_schemes(access_key: str, schemes: Annotated[str, typer.Argument(help="comma-separated: yibao, csb, tif")]) -> None:
    """Choose which signing schemes a key may use (a request signed any other way is refused)."""
    from yibao.gateway import keys

    db = _database(Settings())
    with db.unit_of_work() as session:
        view = keys.set_schemes(session, access_key, schemes)
    db.dispose()
    typer.echo(f"access_key {view.access_key}  schemes {view.schemes}")


@keys_app.command("dialect")
def keys_dialect(access_key: str,
                 name: Annotated[str | None, typer.Argument(help="a dialect of gateway/dialects (national, guangdong, guangzhou …); "
                                                             "leave out to show the key's")] = None) -> None:
    """Bind a key to the regional dialect its HIS speaks (docs/dialects.md): its calls are read and answered in it on every path."""
    from yibao.gateway import dialect, keys

    db = _database(Settings())
    with db.unit_of_work() as session:
        view = keys.view(session, access_key) if name is None else keys.set_dialect(session, access_key, name)
    db.dispose()
    routes = ", ".join(sorted({f"{d} on {t}" for t, d in dialect.bundled().routes()}))
    shown = view.dialect or f"none: the path's (national on /fsi/api/…{', ' + routes if routes else ''})"
    typer.echo(f"access_key {view.access_key}  dialect {shown}")


@keys_app.command("trust-front")
def keys_trust_front(access_key: str,
                     name: Annotated[str, typer.Argument(help="the front server's name (`yibao front add`); "
                                                              "none: trust no front server")]) -> None:
    """Let a front server (前置机) sign this key's requests; every call through it is audited (gateway.via_front)."""
    from yibao.gateway import keys

    db = _database(Settings())
    with db.unit_of_work() as session:
        view = keys.trust_front(session, access_key, None if name.lower() == "none" else name)
    db.dispose()
    typer.echo(f"access_key {view.access_key}  front server {view.front_server or 'none'}")


front_app = typer.Typer(help="Front servers (前置机) that sign for the hospitals behind them.", no_args_is_help=True)
app.add_typer(front_app, name="front")


@front_app.command("add")
def front_add(name: Annotated[str, typer.Argument(help="its name, sent as x-yb-front-id")],
              address: Annotated[str, typer.Option(help="the IP address (or network, 10.1.2.0/28) its requests come from")],
              secret: Annotated[str, typer.Option(help="'generated' (a random 256-bit secret), or one of at least 32 characters")]
              = "generated") -> None:
    """Add a front server and print its secret once; it signs for no key until `yibao keys trust-front KEY NAME`."""
    from yibao.gateway import front

    db = _database(Settings())
    with db.unit_of_work() as session:
        view = front.add(session, name, address, secret=None if secret == "generated" else secret)
    db.dispose()
    console.print(f"[green]added[/] front server {view.name} at {view.address}")
    typer.echo(f"front {view.name}  address {view.address}  secret {view.secret}")
    console.print("give the secret to the front server's operator over a safe channel; it signs x-yb-front-signature with it")


@front_app.command("list")
def front_list() -> None:
    """The front servers, their addresses and the keys that trust them."""
    from yibao.gateway import front

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        fronts = front.all_fronts(session)
    db.dispose()
    for f in fronts:
        typer.echo(f"front {f.name}  address {f.address}  {'active' if f.active else 'inactive'}  "
                   f"trusted by {', '.join(f.trusted_by) or 'no key'}")
    console.print(f"[dim]{len(fronts)} front servers[/]")


dialect_app = typer.Typer(help="Regional dialects of the national interface (docs/dialects.md).", no_args_is_help=True)
app.add_typer(dialect_app, name="dialect")


@dialect_app.command("list")
def dialect_list(folder: Annotated[Path | None, typer.Option(help="check the dialect files of this folder instead of the shipped ones "
                                                                  "(it needs its own national.yaml)")] = None) -> None:
    """Load and check the dialect files, then list each with its paths, regions and header schemes."""
    from yibao.gateway import dialect

    try:
        found = dialect.load_folder(folder) if folder else dialect.bundled()
    except dialect.DialectError as error:
        raise CliError(str(error)) from None
    except FileNotFoundError:
        raise CliError(f"no folder {folder}") from None
    for name in found.names():
        d = found[name]
        typer.echo(f"{name}{f' (extends {d.extends})' if d.extends else ''}  {d.title}")
        paths = ", ".join(d.paths) or ("the built-in /fsi/api/… paths" if name == dialect.NATIONAL else "none (chosen by binding a key)")
        typer.echo(f"  paths {paths}  regions {', '.join(d.regions) or 'none'}  "
                   f"schemes {', '.join(sorted(d.schemes)) if d.schemes else 'all'}  transactions {len(d.rules)}")
    console.print(f"[green]{len(found.names())} dialects checked[/]")


@institution_app.command("add")
def institution_add(fixmedins_code: Annotated[str, typer.Argument(help="letter + 11 digits, the first six the region: H37010000001")],
                    name: Annotated[str, typer.Option(help="the institution's name")],
                    admdvs: Annotated[str | None, typer.Option(help="region (defaults to digits 2–7 of the code)")] = None,
                    type_: Annotated[str | None, typer.Option("--type", help="1 medical institution, 2 pharmacy "
                                                                             "(default from the letter)")] = None,
                    level: Annotated[int | None, typer.Option(help="hospital level 1, 2 or 3")] = None,
                    addr: Annotated[str, typer.Option(help="address")] = "",
                    region_name: Annotated[str | None, typer.Option(help="name of the region, "
                                                                         "if the platform does not know it yet")] = None,
                    schemes: Annotated[str, typer.Option(help="signing schemes its key may use: yibao, csb, tif")] = "yibao") -> None:
    """Add a designated hospital or pharmacy and issue its gateway key (the secret is printed once here)."""
    from yibao.gateway import keys
    from yibao.registry import admin

    db = _database(Settings())
    with db.unit_of_work() as session:
        code = admin.add_institution(session, fixmedins_code=fixmedins_code, name=name, admdvs=admdvs, kind=type_, level=level, addr=addr,
                                     region_name=region_name)
        view = keys.issue(session, code, schemes=schemes, actor="cli")
    db.dispose()
    console.print(f"[green]added[/] {view.fixmedins_code} {name}")
    typer.echo(f"access_key {view.access_key}  secret {view.secret}  schemes {view.schemes}")
    console.print("give the secret to the institution's HIS vendor over a safe channel; `yibao keys show` prints it again")


@operator_app.command("add")
def operator_add(fixmedins_code: str, opter_no: Annotated[str, typer.Argument(help="the operator's number (opter_no in 9001)")],
                 name: Annotated[str, typer.Option(help="the operator's name")]) -> None:
    """Allow an operator (a clerk or a terminal) to sign in for an institution."""
    from yibao.registry import admin

    db = _database(Settings())
    with db.unit_of_work() as session:
        operator = admin.add_operator(session, fixmedins_code=fixmedins_code, opter_no=opter_no, name=name)
        code, number, label = operator.fixmedins_code, operator.opter_no, operator.opter_name
    db.dispose()
    console.print(f"[green]added[/] operator {number} {label} of {code}")


@people_app.command("import")
def people_import(file: Annotated[Path, typer.Argument(help="CSV (UTF-8) or .xlsx, one enrolment per row; columns below")]) -> None:
    """Import insured people: one row per enrolment.

    Required columns: certno (resident ID number), psn_name, insutype (310/320/330/390/392/510), psn_type,
    insuplc_admdvs, psn_insu_date (yyyy-MM-dd). Optional: psn_no, naty, tel, psn_insu_stas, cvlserv_flag, emp_no, emp_name,
    card_no, card_sn, acct_balance (yuan, 310 only). Rejected rows are listed and not written; the good rows land together.
    """
    from yibao.codes.importer import read_rows
    from yibao.registry import people_import as importer

    if not file.exists():
        raise CliError(f"{file} does not exist")
    db = _database(Settings())
    good, rejected, count = importer.validate(read_rows(file))
    report = importer.PeopleReport(rows_read=count, rejected=rejected)
    if good:
        with _progress() as progress, db.unit_of_work() as session:
            task = progress.add_task(f"importing {file.name}", total=len(good))
            importer.apply(session, good, report, lambda n: progress.advance(task, n))
    db.dispose()
    console.print(f"read {report.rows_read} rows: [green]{report.people_added} people and {report.enrolments_added} enrolments added[/], "
                  f"{report.unchanged} already there, [red]{report.rejected_rows} rows rejected[/]")
    _print_rejected(report.rejected)
    if report.rejected:
        raise typer.Exit(1)


def _print_rejected(rejected: list) -> None:
    if not rejected:
        return
    table = Table("row", "column", "reason", title="rejected rows (nothing of them was written)")
    for r in rejected[:200]:
        table.add_row(str(r.row), r.column, r.reason)
    console.print(table)
    if len(rejected) > 200:
        console.print(f"… and {len(rejected) - 200} more reasons")


@audit_app.callback()
def audit_list(ctx: typer.Context,
               kind: Annotated[str | None, typer.Option(help="event kind, * as wildcard: gateway.refused, person.*, key.rotate …")] = None,
               institution: Annotated[str | None, typer.Option(help="fixmedins_code")] = None,
               actor: Annotated[str | None, typer.Option(help="access key, psn_no or IP that acted")] = None,
               subject: Annotated[str | None, typer.Option(help="whom it concerns (psn_no, access key …)")] = None,
               outcome: Annotated[str | None, typer.Option(help="ok or refused")] = None,
               since: Annotated[str | None, typer.Option(help="yyyy-MM-dd or yyyy-MM-dd HH:mm:ss (Beijing time)")] = None,
               limit: Annotated[int, typer.Option(help="rows, newest first")] = 50) -> None:
    """List the audit trail, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from yibao.audit import service as audit
    from yibao.core import clock

    start = None
    if since:
        start = clock.parse_datetime(since, "since")
    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        rows = audit.query(session, kind=kind, fixmedins_code=institution, actor=actor, subject=subject, outcome=outcome, since=start,
                           limit=max(1, min(limit, 10_000)))
        # one line an event, every field named: readable at any terminal width, and greppable
        lines = [f"{r.at:%Y-%m-%d %H:%M:%S}  {r.kind}  {r.outcome}"
                 + "".join(f"  {name}={value}" for name, value in (("actor", r.actor), ("subject", r.subject),
                                                                  ("institution", r.fixmedins_code), ("infno", r.infno),
                                                                  ("ip", r.ip)) if value)
                 + (f"  reason={r.reason}" if r.reason else "") for r in rows]
    db.dispose()
    for line in lines:
        typer.echo(line)
    console.print(f"[dim]{len(lines)} events, newest first[/]")


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the insurers' access log (保医通), an SM3 hash chain: OK with the count, or the first broken row (exit 2)."""
    from yibao.sharing import service as sharing

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        verdict = sharing.verify(session)
    db.dispose()
    if not verdict.ok:
        raise CliError(verdict.line())
    typer.echo(verdict.line())
    typer.echo(f"head: access {verdict.count}, SM3 {verdict.head} (published elsewhere, it fixes the chain up to here)")


@audit_app.command("accesses")
def audit_accesses(insurer: Annotated[str | None, typer.Option(help="only this insurer's accesses")] = None,
                   limit: Annotated[int, typer.Option(help="rows, newest first")] = 50) -> None:
    """The insurers' accesses (保医通), newest first: who read which authorisation, granted or refused, and why."""
    from yibao.sharing import service as sharing

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        rows = sharing.accesses(session, max(1, min(limit, 10_000)), insurer)
        lines = [f"{r.seq}  {r.at:%Y-%m-%d %H:%M:%S}  {r.insurer_code}  consent={r.consent_id}  {r.outcome}"
                 + (f"  reason={r.reason}" if r.reason else "") + (f"  settlements={r.setl_ids}" if r.setl_ids else "")
                 + (f"  ip={r.ip}" if r.ip else "") for r in rows]
    db.dispose()
    for line in lines:
        typer.echo(line)
    console.print(f"[dim]{len(lines)} accesses, newest first (`yibao audit verify` checks the chain)[/]")


@insurer_app.command("add")
def insurer_add(code: Annotated[str, typer.Argument(help="4 to 20 capital letters or digits, e.g. PICC3701")],
                name: Annotated[str, typer.Option(help="the insurer's name")]) -> None:
    """Register a commercial insurer and print its API secret once (sealed at rest; give it over a safe channel)."""
    from yibao.audit import service as audit
    from yibao.sharing import service as sharing

    db = _database(Settings())
    with db.unit_of_work() as session:
        secret = sharing.add_insurer(session, code, name)
        audit.record(session, "insurer.add", actor="cli", subject=code.strip().upper())
    db.dispose()
    console.print(f"[green]added[/] insurer {code.strip().upper()} {name}")
    typer.echo(f"access_key {code.strip().upper()}  secret {secret}")
    console.print("the secret is shown only now: the insurer signs x-yb-signature with it (docs/sharing.md)")


@insurer_app.command("list")
def insurer_list() -> None:
    """The registered insurers."""
    from yibao.sharing import service as sharing

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        rows = sharing.insurers(session)
    db.dispose()
    for row in rows:
        typer.echo(f"{row['insurer_code']}  {row['insurer_name']}")


@app.command()
def call(infno: str, input_json: Annotated[str, typer.Argument(help="the transaction's input object as JSON")],
         fixmedins_code: Annotated[str, typer.Option(help="calling institution")] = "H37010000001",
         url: str = "http://127.0.0.1:8000",
         secret: Annotated[str | None, typer.Option(help="defaults to the key in the local database")] = None,
         admvs: Annotated[str, typer.Option(help="mdtrtarea_admvs")] = "370100",
         insuplc: Annotated[str, typer.Option(help="insuplc_admdvs: the patient's insured region (another province: "
                                                   "care away from home)")] = "",
         msgid: Annotated[str | None, typer.Option(help="the message id (a retry sends the same); default a new one")] = None) -> None:
    """Sign in (9001) and send one signed transaction; print both messages."""
    from yibao.client import CounterClient, pretty

    try:
        payload = json.loads(input_json)
    except json.JSONDecodeError as error:
        raise CliError(f"the input is not JSON ({error.msg} at character {error.pos}): pass the transaction's input object, "
                       "e.g. '{\"data\":{\"mdtrt_cert_type\":\"02\",…}}'") from None
    if not isinstance(payload, dict):
        raise CliError("the input must be a JSON object, e.g. '{\"data\":{…}}'")
    if secret is None:
        from yibao.gateway import keys

        db = _database(Settings())
        with db.unit_of_work(write=False) as session:
            secret = keys.active_secret(session, fixmedins_code)
        db.dispose()
        if secret is None:
            raise CliError(f"no key for {fixmedins_code} in the local database; pass --secret")
    client = CounterClient(url, fixmedins_code, secret, mdtrtarea_admvs=admvs)
    signed = client.sign_in()
    if signed.get("infcode") != 0:
        print(pretty(signed))
        raise typer.Exit(1)
    request = client.envelope(infno, payload, msgid=msgid, insuplc_admdvs=insuplc)
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

    from yibao.client import CounterClient
    from yibao.demo import traffic
    from yibao.gateway import keys

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        codes = traffic.institutions(session, region)
        secrets = {code: keys.active_secret(session, code) for code in codes}
        candidates = [p for p in traffic.candidates(session, people * 2, random.Random(seed)) if p.admdvs == region][:people]
        items = traffic.catalogue(session)
    db.dispose()
    clients = {}
    for code in codes:
        client = CounterClient(url, code, secrets[code] or "", mdtrtarea_admvs=region)
        answer = client.sign_in()
        if answer.get("infcode") != 0:
            raise CliError(f"{code} could not sign in: {answer.get('err_msg')}")
        clients[code] = client
    with _progress() as progress:
        task = progress.add_task("visits", total=visits)
        report = traffic.run(clients, candidates, items, visits, seed, lambda n: progress.advance(task, n))
    console.print(f"outpatient {report.outpatient}, inpatient {report.inpatient}, pharmacy {report.pharmacy}, "
                  f"reversals {report.reversals}, refused {report.refused}; billed {Decimal(report.settled_fen) / 100:,.2f} 元")
    for reason, times in report.reasons.most_common(10):
        console.print(f"[yellow]refused {times}×[/] {reason}")


@console_app.command("staff-add")
def console_staff_add(name: Annotated[str, typer.Argument(help="the staff member's user name (letters, digits, Chinese, . _ -)")],
                      replace: Annotated[bool, typer.Option("--replace", help="give an existing staff member "
                                                                             "a new password")] = False) -> None:
    """Add a platform staff member to the console; a generated password is printed once (stored as scrypt)."""
    from yibao.console import service

    settings = Settings()
    db = _database(settings)
    with db.unit_of_work() as session:
        password = service.add_staff(session, name, settings.password_scrypt_n, replace=replace)
    db.dispose()
    typer.echo(f"staff {name}  password {password}")
    console.print("sign in at /console/ (平台人员登录); the password is not shown again (--replace issues a new one)")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove that settlements balance, year-to-date totals equal their postings and accounts add up."""
    from yibao.reconciliation.books import check

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
    """Print the parameters in force for a region, insurance type and day, by their YAML path."""
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
    for path, unit, value in policy.items():
        table.add_row(path, _policy_text(unit, value))
    console.print(table)
    for (admdvs, family), reference in sorted(book.references.items()):
        if admdvs == region:
            console.print(f"[dim]{family}.yaml: {reference}[/]")


def _policy_text(unit: str, value: object) -> str:
    from decimal import Decimal

    def money(fen: int) -> str:
        return f"{Decimal(fen) / 100:,.2f} 元"

    if unit == "yuan":
        return money(value)  # type: ignore[arg-type]
    if unit == "ratio":
        return f"{value * 100:.0f}%"  # type: ignore[operator]
    if unit == "tiers":
        return "; ".join(f"from {money(t[0])} {t[1] * 100:.0f}%" for t in value)  # type: ignore[attr-defined]
    if isinstance(value, (frozenset, set)):
        return ", ".join(sorted(str(v) for v in value)) or "none"
    return str(value)


def _policy_cases(directory: Path | None, region: str | None):
    """Load a policy directory (checked as a server would) and run its test cases: (root, book, results)."""
    from yibao.policy.parameters import bundled_root, load_checked
    from yibao.settlement.cases import run_all

    root = directory or bundled_root()
    book = load_checked(root)
    if region and not book.has_region(region):
        raise CliError(f"no policy for region {region} in {root}")
    return root, book, run_all(book, root, region)


@policy_app.command("test")
def policy_test(region: Annotated[str | None, typer.Argument(help="a region (admdvs); all when left out")] = None,
                directory: Annotated[Path | None, typer.Option("--dir", help="a policy directory (default: YIBAO_POLICY_DIR or the "
                                                               "shipped one)")] = None) -> None:
    """Run the test cases written beside the policy (<region>/tests/*.yaml): one line per case."""
    from yibao.core.errors import YibaoError

    try:
        _, _, results = _policy_cases(directory, region)
    except (YibaoError, CliError) as error:
        console.print(f"[red]{getattr(error, 'message', error)}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for result in results:
        console.print(result.line(), highlight=False, markup=False, soft_wrap=True)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} of {len(results)} cases pass", highlight=False, soft_wrap=True)
    if failed or not results:
        raise typer.Exit(1)


@policy_app.command("reload")
def policy_reload(directory: Annotated[Path | None, typer.Option("--dir", help="the policy directory the servers read "
                                                                 "(default: YIBAO_POLICY_DIR or the shipped one)")] = None) -> None:
    """Check the policy directory and its test cases, then have running servers load it (they watch the directory)."""
    from yibao.core.errors import YibaoError
    from yibao.policy.parameters import STAMP

    try:
        root, book, results = _policy_cases(directory, None)
    except (YibaoError, CliError) as error:
        console.print(f"[red]not reloaded, the policy in force stays: {getattr(error, 'message', error)}[/]", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(2) from None
    failed = [r for r in results if not r.passed]
    if failed:
        console.print(f"[red]not reloaded, the policy in force stays: {failed[0].line()}[/]"
                      + (f" (and {len(failed) - 1} more failing cases)" if len(failed) > 1 else ""), highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    from yibao.core import clock

    # the stamp changes the directory's signature: every server process loads it again at its next check
    try:
        (root / STAMP).write_text(f"{clock.fmt_datetime(clock.now())}\n", encoding="utf-8")
    except OSError as error:
        raise CliError(f"checked, but the servers cannot be told: {root / STAMP} cannot be written ({error.strerror}); "
                       "keep the policy in a directory of your own (YIBAO_POLICY_DIR)") from None
    console.print(f"policy of {', '.join(sorted(book.regions))} checked ({len(results)} cases pass); running servers load it "
                  f"within {os.environ.get('YIBAO_POLICY_CHECK_S', '2')} s", highlight=False, soft_wrap=True)


@policy_app.command("whatif")
def policy_whatif(policy: Annotated[Path, typer.Option("--policy", help="the changed policy directory (a copy of the one in "
                                                       "force with your change)")],
                  year: Annotated[int, typer.Option("--year", help="the year of care whose settlements are replayed")],
                  out: Annotated[Path, typer.Option("--out", help="where the report goes (report.json, report.md, chart.png)")]
                  = Path("whatif"),
                  current: Annotated[Path | None, typer.Option("--current", help="the policy in force (default: YIBAO_POLICY_DIR "
                                                               "or the shipped one)")] = None,
                  workers: Annotated[int | None, typer.Option("--workers", help="replaying processes (default: every core)")] = None
                  ) -> None:
    """Replay every settlement of a year under a changed policy and report what each fund and the people would pay.

    Reads the database, never writes it: the ledger, the year totals and the settlements stay as they are."""
    import json

    from yibao.core.errors import YibaoError
    from yibao.policy.parameters import bundled_root
    from yibao.whatif import report as reports
    from yibao.whatif import service as whatif

    if not policy.is_dir():
        raise CliError(f"no policy directory at {policy}")
    settings = Settings()
    db = _database(settings)
    try:
        with _progress() as bar:
            task = bar.add_task(f"replaying {year}", total=None)
            summary = whatif.run(db, year, current or bundled_root(), policy, workers=workers,
                                 total=lambda n: bar.update(task, total=n), progress=lambda n: bar.advance(task, n))
    except YibaoError as error:
        console.print(f"[red]{error.message}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    found = summary.as_json()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps({"year": year, "policy": str(policy), **found}, indent=2, ensure_ascii=False) + "\n")
        title = f"What if: {policy.name}, {year}"
        (out / "report.md").write_text(reports.markdown(found, title), encoding="utf-8")
        drawn = reports.chart(found, out / "chart.png", title)
    except OSError as error:
        raise CliError(f"the report cannot be written to {out}: {error.strerror}") from None
    change = found["change"]
    console.print(f"{found['settlements']:,} settlements, {found['changed_settlements']:,} pay differently: funds "
                  f"{reports.yuan(change['fund_pay_sumamt'])} yuan, people's own payments {reports.yuan(change['psn_part_amt'])} yuan; "
                  f"report in {out}/report.md" + ("" if drawn else " (no chart: matplotlib is not installed)"),
                  highlight=False, soft_wrap=True)


@maternity_app.command("run")
def maternity_run(day: Annotated[str | None, typer.Option("--date", help="pay what is due on this day, yyyy-mm-dd (default: "
                                                          "today)")] = None) -> None:
    """Schedule an allowance for every new maternity settlement, cancel reversed ones, pay those due (run it daily)."""
    from yibao.core import clock
    from yibao.core.errors import YibaoError
    from yibao.maternity import payout as payouts
    from yibao.maternity import service as maternity

    on = clock.parse_date(day, "--date") if day else clock.today()
    settings = Settings()
    channel = None
    if settings.payout_url or settings.payout_key:
        try:
            channel = payouts.HttpPayout(settings.payout_url, settings.payout_key, timeout_s=settings.payout_timeout_s)
        except YibaoError as error:
            raise CliError(error.message) from None
    db = _database(settings)
    try:
        report = maternity.run(db, channel, on)
    except YibaoError as error:
        raise CliError(error.message) from None
    finally:
        db.dispose()
        if channel is not None:
            channel.close()
    console.print(report.line() + ("" if channel else "; nothing paid: no payout channel (YIBAO_PAYOUT_URL, YIBAO_PAYOUT_KEY)"),
                  highlight=False, soft_wrap=True)


@drg_app.command("report")
def drg_report(month: Annotated[str, typer.Option("--month", help="the month of settlement, yyyy-mm")],
               out: Annotated[Path, typer.Option("--out", help="where the report goes (report.json, report.md, chart-<hospital>.png)")]
               = Path("drg-report"),
               hospital: Annotated[str | None, typer.Option("--hospital", help="one hospital's fixmedins_code (default: every one)")]
               = None,
               method: Annotated[str | None, typer.Option("--method", help="drg or dip (default: each region's policy, drg.yaml)")]
               = None) -> None:
    """The month's grouped inpatient cases per hospital: fund payment by group against by item, per group, with a chart.

    Reads the database, never writes it."""
    import json

    from yibao.core.errors import YibaoError
    from yibao.drg import report as reports
    from yibao.drg import service as drg

    if method not in (None, "drg", "dip"):
        raise CliError(f"--method is drg or dip, not {method}")
    settings = Settings()
    db = _database(settings)
    try:
        with db.unit_of_work(write=False) as session:
            cases = drg.month_cases(session, month, hospital, method)
    except YibaoError as error:
        console.print(f"[red]{error.message}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    found = reports.build(month, cases)
    drawn = 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (out / "report.md").write_text(reports.markdown(found), encoding="utf-8")
        for h in found["hospitals"]:
            drawn += reports.chart(h, out / f"chart-{h['fixmedins_code']}.png", f"{h['fixmedins_code']} {month}: over/under by group")
    except OSError as error:
        raise CliError(f"the report cannot be written to {out}: {error.strerror}") from None
    t = found["totals"]
    console.print(f"{t['cases']:,} cases in {len(found['hospitals'])} hospitals: funds by item {reports.yuan(t['item_fund'])} yuan, "
                  f"by group {reports.yuan(t['fund_to_hospital'])} yuan; report in {out}/report.md ({drawn} charts)",
                  highlight=False, soft_wrap=True)


def main() -> None:
    """Run the command; a foreseeable failure is one line on stderr and exit code 2, never a traceback."""
    import httpx
    from sqlalchemy.exc import OperationalError

    from yibao.core.errors import YibaoError
    from yibao.core.vault import VaultError

    try:
        code = app(standalone_mode=False)
        if isinstance(code, int):
            sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except CliError as error:
        _fail(str(error))
    except YibaoError as error:
        _fail(error.message)
    except VaultError as error:
        _fail(str(error))
    except httpx.ConnectError as error:
        _fail(f"no server answered ({error}): is `yibao serve` running at that address?")
    except httpx.HTTPError as error:
        _fail(f"the server did not answer properly: {error}")
    except OperationalError as error:
        _fail(f"the database cannot be used: {str(error.orig or error).splitlines()[0]}")
    except click.exceptions.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except Exception as error:  # a bug: still one line, the traceback only when asked for
        if os.environ.get("YIBAO_DEBUG") == "1":
            raise
        _fail(f"internal error: {type(error).__name__}: {error} (YIBAO_DEBUG=1 shows the traceback)")


def _fail(message: str) -> None:
    sys.stderr.write(f"yibao: {' '.join(message.split())}\n")  # one line, whatever the terminal's width
    sys.exit(2)


federation_app = typer.Typer(help="A federation on this machine: a hub and province nodes (docs/federation.md).", no_args_is_help=True)
app.add_typer(federation_app, name="federation")
FEDERATION_DIR = Path("var/federation")


@federation_app.command("up")
def federation_up(folder: Annotated[Path, typer.Option("--dir", help="where the cluster, logs and federation.json go")] = FEDERATION_DIR,
                  people: Annotated[int, typer.Option(help="demo people per province")] = 2000,
                  fsync: Annotated[bool, typer.Option(help="PostgreSQL fsync (off: faster, for tests only)")] = True) -> None:
    """Start a hub and the province nodes 370100 and 440300 (each its own PostgreSQL database) and nats-server."""
    from yibao.federation import launcher

    try:
        launcher.up(folder, people=people, fsync=fsync, say=console.print)
    except RuntimeError as error:
        raise CliError(str(error)) from None
    console.print(f"up. Stop with: yibao federation down --dir {folder}")


@federation_app.command("down")
def federation_down(folder: Annotated[Path, typer.Option("--dir")] = FEDERATION_DIR) -> None:
    """Stop what `federation up` started and remove its databases."""
    from yibao.federation import launcher

    try:
        launcher.down(folder, say=console.print)
    except RuntimeError as error:
        raise CliError(str(error)) from None


@federation_app.command("close")
def federation_close(month: Annotated[str, typer.Argument(help="the clearing window, YYYYMM")],
                     region: Annotated[str, typer.Option(help="print only this region's statement")] = "") -> None:
    """At the hub (YIBAO_DATABASE_URL = the hub's database): close a month's clearing window and print its statement."""
    from yibao.federation import hub

    db = _database(Settings())
    with db.unit_of_work() as session:
        if not hub.is_hub(session):
            raise CliError("this database holds insured people: it is a province node's, not the hub's (set YIBAO_DATABASE_URL "
                           "to the hub's database)")
        result = hub.close(session, month)
    db.dispose()
    typer.echo(json.dumps(hub.for_region(result, region) if region else result, ensure_ascii=False, indent=2))


@federation_app.command("statement")
def federation_statement(month: Annotated[str, typer.Argument(help="the clearing window, YYYYMM")],
                         region: Annotated[str, typer.Option(help="print only this region's statement")] = "") -> None:
    """At the hub: a month's clearing statement as it stands (closed: as closed)."""
    from yibao.federation import hub

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        result = hub.statement(session, month)
    db.dispose()
    typer.echo(json.dumps(hub.for_region(result, region) if region else result, ensure_ascii=False, indent=2))


@bills_app.command("issue")
def bills_issue(follow: Annotated[float, typer.Option(help="keep issuing, looking again every this many seconds (an issuer "
                                                           "process of its own, e.g. beside servers run with "
                                                           "YIBAO_BILL_ISSUE_INTERVAL_S=0); 0: once")] = 0.0,
                every: Annotated[bool, typer.Option("--all", help="first bill every settlement without one, however old "
                                                                  "(the issuer looks a minute behind its cursor)")] = False) -> None:
    """Issue now every bill not issued yet (the server's background issuer does this every second)."""
    import time

    from yibao.bill import service as bills

    settings = Settings()
    db = _database(settings)
    try:
        if every:
            typer.echo(f"{bills.sweep(db, settings)} bill(s) issued for settlements of any time")
        while True:
            issued = bills.issue_all_pending(db, settings)
            if not follow:
                typer.echo(f"{issued} bill(s) issued")
                return
            if issued:
                console.print(f"{issued} bill(s) issued")
            time.sleep(follow)
    except KeyboardInterrupt:
        pass
    finally:
        db.dispose()


@bills_app.command("rotate-key")
def bills_rotate_key() -> None:
    """A new SM2 key signs bills from now on; earlier keys stay published (GET /api/v1/bills/keys) and keep verifying."""
    from yibao.bill import service as bills

    db = _database(Settings())
    with db.unit_of_work() as session:
        key_id, _ = bills.rotate_key(session)
    db.dispose()
    typer.echo(f"bills are signed with key {key_id} from now on")


@bills_app.command("keys")
def bills_keys() -> None:
    """The bill signing keys: id, when made, active or retired (their public keys: GET /api/v1/bills/keys)."""
    from yibao.bill import service as bills

    db = _database(Settings())
    for key in bills.public_keys(db):
        typer.echo(f"{key['key_id']}  {key['created_at']}  {key['status']}")
    db.dispose()
@rx_app.command("key-set")
def prescription_key_set(fixmedins_code: str, public_key: Annotated[Path, typer.Argument(help="the institution's SM2 public key (PEM)")]
                         ) -> None:
    """Register the SM2 public key an institution signs its prescriptions with (7102/7103 fixmedins_sign_info)."""
    from yibao.prescription import service

    db = _database(Settings())
    with db.unit_of_work() as session:
        service.set_institution_key(session, fixmedins_code, public_key.read_text(encoding="ascii"))
    db.dispose()
    typer.echo(f"{fixmedins_code}: prescription key registered")


@rx_app.command("key-new")
def prescription_key_new(fixmedins_code: str) -> None:
    """Make an SM2 key pair for an institution (a demo hospital, or one without its own CA), register the public half and
    print the private half once: it is not kept here; give it to the hospital's HIS."""
    from yibao.core import sm2
    from yibao.prescription import service

    private_pem, public_pem = sm2.generate_keypair()
    db = _database(Settings())
    with db.unit_of_work() as session:
        service.set_institution_key(session, fixmedins_code, public_pem)
    db.dispose()
    typer.echo(private_pem, nl=False)


@rx_app.command("key-show")
def prescription_key_show(fixmedins_code: str) -> None:
    """Print an institution's registered SM2 public key; in demo mode, a demo hospital's private key too (for the demo's HIS)."""
    from yibao.deployment import service as deployment
    from yibao.prescription.models import PrescriptionKey

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        row = session.get(PrescriptionKey, fixmedins_code)
        demo = deployment.mode_of(db.engine) == deployment.DEMO
        public_pem, private_pem = (row.public_key, row.demo_private_key) if row is not None else ("", None)
    db.dispose()
    if not public_pem:
        raise CliError(f"no prescription key registered for {fixmedins_code}")
    typer.echo(public_pem, nl=False)
    if demo and private_pem:
        typer.echo(private_pem, nl=False)


@rx_app.command("platform-key")
def prescription_platform_key() -> None:
    """Print the platform's SM2 public key (医保电子签名: 7102's hi_sign_info verifies with it), created at first need."""
    from yibao.prescription import service

    db = _database(Settings())
    with db.unit_of_work() as session:
        _, public_pem = service.platform_key(session)
    db.dispose()
    typer.echo(public_pem, nl=False)


# -- credit care (信用就医, docs/credit-care.md) -------------------------------------------------------------------
credit_app = typer.Typer(help="Credit care (信用就医): partner banks, the repayment job and the banks' statements.",
                         no_args_is_help=True)
app.add_typer(credit_app, name="credit")
credit_bank_app = typer.Typer(help="Partner banks.", no_args_is_help=True)
credit_app.add_typer(credit_bank_app, name="bank")


@credit_bank_app.command("add")
def credit_bank_add(bank_code: Annotated[str, typer.Argument(help="the bank's code, e.g. ICBC")],
                    name: Annotated[str, typer.Option(help="its name as people see it, e.g. 中国工商银行")],
                    url: Annotated[str, typer.Option(help="its credit service's base URL (https://…)")],
                    key: Annotated[str, typer.Option(help="the HMAC-SM3 key both sides sign with (stored encrypted)")]) -> None:
    """Register a partner bank, or change its name, endpoint or key."""
    from yibao.credit import service as credit

    db = _database(Settings())
    with db.unit_of_work() as session:
        credit.add_bank(session, bank_code=bank_code, bank_name=name, url=url, key=key)
    db.dispose()
    console.print(f"partner bank {bank_code} at {url}")


@credit_bank_app.command("list")
def credit_bank_list() -> None:
    """The partner banks (never their keys)."""
    from yibao.credit import service as credit

    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        for row in credit.banks(session):
            typer.echo(f"{row.bank_code}\t{row.bank_name}\t{row.url}")
    db.dispose()


@credit_app.command("run")
def credit_run(day: Annotated[str, typer.Option("--date", help="the business day (yyyy-mm-dd): instalments due on or before it "
                                                               "are repaid; default today")] = "") -> None:
    """Repay the instalments due: the personal account where the policy allows, else the bank collects from the card;
    a collection declined makes the instalment overdue and suspends the agreement (run daily, e.g. from cron)."""
    from yibao.core import clock
    from yibao.credit import service as credit

    on = clock.parse_date(day, "--date") if day else clock.today()
    db = _database(Settings())
    report = credit.run_due(db, on)
    db.dispose()
    console.print(f"{on.isoformat()}: {report.instalments} instalments, {report.from_account_fen / 100:,.2f} from personal accounts, "
                  f"{report.from_bank_fen / 100:,.2f} collected by banks, {report.overdue} overdue, {report.restored} agreements restored")
    for line in report.problems:
        console.print(f"[yellow]![/] bank unavailable: {line}")


@credit_app.command("statement")
def credit_statement(bank_code: str, month: Annotated[str, typer.Argument(help="yyyy-mm")],
                     fmt: Annotated[str, typer.Option("--format", help="json, or csv (one line per advance)")] = "json") -> None:
    """A partner bank's month: advances, repayments (account and card), outstanding and overdue at the month's end."""
    import csv

    from yibao.credit import service as credit

    if fmt not in ("json", "csv"):
        raise CliError("--format is json or csv")
    db = _database(Settings())
    with db.unit_of_work(write=False) as session:
        statement = credit.bank_statement(session, bank_code, month)
    db.dispose()
    if fmt == "json":
        typer.echo(json.dumps(statement, ensure_ascii=False, indent=2))
        return
    lines = statement["advances"]
    writer = csv.DictWriter(sys.stdout, fieldnames=list(lines[0]) if lines else ["advance_no"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    summary = {k: v for k, v in statement.items() if k != "advances"}
    typer.echo("# " + ", ".join(f"{k}={v}" for k, v in summary.items()))
