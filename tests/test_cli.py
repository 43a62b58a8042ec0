from sqlalchemy import func, select

from kassa.cli import main
from kassa.models import Organisation, User


def test_plugins_list(app, db):
    result = app.test_cli_runner().invoke(main, ["plugins", "list"])
    assert result.exit_code == 0
    assert "gateway_stripe" in result.output and "kassa-gateway-stripe" in result.output
    assert "builtin.offline" in result.output


def test_users_create(app, db, provider):
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["users", "create", "--org-id", str(provider.id), "--email", "Boss@Cloud.example",
                                  "--name", "Boss", "--role", "cloud_admin"],
                           input="long-password-1\nlong-password-1\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User).filter_by(email="boss@cloud.example")).role == "cloud_admin"
    result = runner.invoke(main, ["users", "create", "--org-id", str(provider.id), "--email", "x@cloud.example",
                                  "--name", "X", "--role", "customer_admin"], input="long-password-1\nlong-password-1\n")
    assert result.exit_code != 0 and "cannot have a user with role" in result.output


def test_demo_seeds_once_and_prints_logins(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "admin@cloud7.example" in result.output
    kinds = dict(db.session.execute(select(Organisation.kind, func.count()).group_by(Organisation.kind)).all())
    assert kinds["provider"] == 1 and kinds["reseller"] == 1 and kinds["customer"] >= 4
    countries = set(db.session.scalars(select(Organisation.country).where(Organisation.kind == "customer")))
    assert "IN" in countries and len(countries) >= 3
    roles = set(db.session.scalars(select(User.role)))
    assert {"cloud_admin", "staff", "reseller_admin", "reseller_subadmin", "customer_admin"} <= roles
    again = runner.invoke(main, ["demo"])
    assert "already present" in again.output
    assert db.session.scalar(select(func.count(Organisation.id)).where(Organisation.kind == "provider")) == 1
