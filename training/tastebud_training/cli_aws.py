"""`tastebud aws ...`: operator commands for the AWS deployment (docs/DEPLOY.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

aws_app = typer.Typer(no_args_is_help=True, help="Operate the AWS deployment (seed DynamoDB).")


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")]  # NaN -> None


@aws_app.command("seed")
def seed(
    data: Annotated[Path, typer.Option("--data", help="Data directory (see `tastebud data validate`)")],
    profiles_table: Annotated[str, typer.Option("--profiles-table", help="Stack output ProfilesTable")],
    region: Annotated[str | None, typer.Option("--region", help="AWS region (default: the AWS config)")] = None,
) -> None:
    """Write the user profiles of a data directory to the stack's DynamoDB profiles table."""
    import boto3

    from tastebud.adapters.aws.dynamodb_seed import seed_profiles
    from tastebud_training.data import load_dataset

    dataset = load_dataset(data)
    client = boto3.session.Session(region_name=region).client("dynamodb")
    users = seed_profiles(client, profiles_table, _records(dataset.users))
    typer.echo(f"{profiles_table}: {users} profiles")
