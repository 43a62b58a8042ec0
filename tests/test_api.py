from sqlalchemy import func, select

from kassa.models import Organisation
from kassa.services import users
from kassa.testing.helpers import isolated


def test_missing_wrong_and_revoked_tokens_are_401(app, db, admin, api):
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer kassa_wrong"}, {"Authorization": "Basic abc"}):
        response = isolated(client.get, "/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["message"].startswith("Missing or invalid API token")
    token, record = users.create_api_token(admin, "ci")
    assert isolated(client.get, "/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    users.revoke_api_token(admin, record.id)
    assert isolated(client.get, "/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_are_stored_hashed(app, db, admin):
    token, record = users.create_api_token(admin, "ci")
    assert token not in record.token_hash and len(record.token_hash) == 64


def test_me(app, db, admin, api):
    body = api(admin).get("/api/v1/me").get_json()
    assert body["email"] == admin.email and "plugins.manage" in body["privileges"]


def test_field_errors_and_nothing_written(app, db, admin, api):
    before = db.session.scalar(select(func.count(Organisation.id)))
    response = api(admin).post("/api/v1/organisations", json={"name": "", "country": "XX", "email": "nope"})
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert set(fields) >= {"name", "country", "email"}
    assert db.session.scalar(select(func.count(Organisation.id))) == before
    response = api(admin).post("/api/v1/organisations", data="not json", content_type="text/plain")
    assert response.status_code == 422 and "JSON object" in response.get_json()["error"]["message"]


def test_unknown_api_route_is_json_404(app, db, admin, api):
    response = api(admin).get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.is_json


def test_openapi_documents_every_api_route(app, db):
    doc = isolated(app.test_client().get, "/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    import re

    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, f"{method} {rule.rule} is not in openapi.json"
    assert doc["paths"]["/api/v1/organisations"]["post"]["responses"]["422"]


def test_organisation_crud_through_api(app, db, admin, api):
    client = api(admin)
    created = client.post("/api/v1/organisations", json={"kind": "customer", "name": "Api Ltd", "country": "us",
                                                          "email": "Ops@Api.example"}).get_json()
    assert created["country"] == "US" and created["email"] == "ops@api.example"
    updated = client.patch(f"/api/v1/organisations/{created['id']}", json={"city": "Austin"}).get_json()
    assert updated["city"] == "Austin"
    listed = client.get("/api/v1/organisations?q=api&per_page=5").get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == created["id"]
    assert client.get("/api/v1/organisations?page=x").status_code == 422
