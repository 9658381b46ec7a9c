"""`tastebud aws ...`: operator commands for the AWS deployment (docs/DEPLOY.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

aws_app = typer.Typer(no_args_is_help=True, help="Operate the AWS deployment (preflight an account, seed DynamoDB).")


@aws_app.command("seed")
def seed(
    data: Annotated[Path, typer.Option("--data", help="Data directory (see `tastebud data validate`)")],
    profiles_table: Annotated[str, typer.Option("--profiles-table", help="Stack output ProfilesTable")],
    region: Annotated[str | None, typer.Option("--region", help="AWS region (default: the AWS config)")] = None,
) -> None:
    """Write the user profiles of a data directory to the stack's DynamoDB profiles table."""
    import boto3

    from tastebud.adapters.aws.dynamodb_seed import seed_profiles
    from tastebud_training.data import frame_records, load_dataset

    dataset = load_dataset(data)
    client = boto3.session.Session(region_name=region).client("dynamodb")
    users = seed_profiles(client, profiles_table, frame_records(dataset.users))
    typer.echo(f"{profiles_table}: {users} profiles")


@aws_app.command("preflight")
def preflight(
    region: Annotated[str, typer.Option("--region", help="Region to deploy to")],
    stack_name: Annotated[str, typer.Option("--stack-name", help="Stack name `sam deploy` will use")] = "tastebud-dev",
    profile: Annotated[str | None, typer.Option("--profile", help="AWS config profile")] = None,
    reserved_concurrency: Annotated[int, typer.Option(
        "--reserved-concurrency", help="The ReservedConcurrency parameter you will deploy with")] = 0,
    user_tower_instance_type: Annotated[str | None, typer.Option(
        "--user-tower-instance-type", help="The UserTowerInstanceType parameter (default: the template's)")] = None,
    user_tower_instance_count: Annotated[int | None, typer.Option(
        "--user-tower-instance-count", help="The UserTowerInstanceCount parameter (default: the template's)")] = None,
    config_env: Annotated[str, typer.Option(
        "--config-env", help="samconfig.toml profile the deploy command printed at the end uses")] = "default",
    samconfig: Annotated[Path, typer.Option("--samconfig", help="SAM CLI config file")] = Path("samconfig.toml"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of the table")] = False,
) -> None:
    """Check an account before the first deploy (docs/DEPLOY.md §2); exit 1 when a check fails."""
    import json

    import boto3
    from botocore.exceptions import BotoCoreError
    from rich.console import Console
    from rich.table import Table

    from tastebud_training import aws_preflight

    session = boto3.session.Session(region_name=region, profile_name=profile)
    needs = aws_preflight.sagemaker_quota_needs(
        user_tower_instance_type=user_tower_instance_type or aws_preflight.USER_TOWER_INSTANCE_TYPE,
        user_tower_instance_count=user_tower_instance_count or aws_preflight.USER_TOWER_INSTANCE_COUNT)
    try:
        results = aws_preflight.run_preflight(aws_preflight.PreflightClients.from_session(session), region=region,
                                              stack_name=stack_name, reserved_concurrency=reserved_concurrency,
                                              quota_needs=needs)
    except BotoCoreError as error:  # no credentials, no network: nothing was checked
        typer.echo(f"preflight: {error}", err=True)
        raise typer.Exit(2) from error
    overrides = aws_preflight.parameter_overrides(results)
    deploy = aws_preflight.deploy_command(overrides, config_env=config_env,
                                          samconfig=samconfig.read_text() if samconfig.is_file() else "")
    if as_json:
        typer.echo(json.dumps({"region": region, "stack_name": stack_name, "ok": not aws_preflight.failed(results),
                               "parameter_overrides": overrides, "deploy": deploy,
                               "checks": [r.as_dict() for r in results]}, indent=1))
    else:
        table = Table("check", "status", "found", "fix", title=f"preflight {stack_name} in {region}")
        colours = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        for result in results:
            table.add_row(result.name, f"[{colours[result.status]}]{result.status}[/]", result.detail, result.fix)
        console = Console()
        console.print(table)
        console.print(deploy, highlight=False, soft_wrap=True, markup=False)
    if aws_preflight.failed(results):
        raise typer.Exit(1)
