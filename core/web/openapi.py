"""The OpenAPI document, built from the API views' own declarations, so it grows
with every capability and cannot drift from the routes (a test checks both ways)."""
from __future__ import annotations

import re

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"type": "integer"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}},
}


def doc(summary: str, *, body: dict | None = None, response: dict | None = None, query: dict | None = None,
        status: int = 200, errors: tuple[int, ...] = (401, 403, 404, 422), public: bool = False,
        media_types: tuple[str, ...] = ("application/json",)):
    """Attach OpenAPI facts to a view (``media_types``: of the success response; errors are JSON)."""

    def decorator(view):
        view.openapi = dict(summary=summary, body=body, response=response or {"type": "object"}, query=query or {},
                            status=status, errors=errors, public=public, media_types=media_types)
        return view

    return decorator


def build(app, prefix: str = "/api/v1") -> dict:
    paths: dict = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix):
            continue
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "openapi", None)
        if meta is None:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op = {"summary": meta["summary"], "operationId": f"{rule.endpoint}_{method.lower()}",
                  "responses": {str(meta["status"]): {"description": "OK", "content": {
                      media_type: {"schema": meta["response"]} for media_type in meta["media_types"]}}}}
            if meta["status"] == 204:  # no body, so no media type
                op["responses"]["204"] = {"description": "No Content"}
            params = [{"name": name, "in": "path", "required": True,
                       "schema": {"type": "integer" if conv == "int" else "string"}}
                      for conv, name in re.findall(r"<(?:([a-z]+):)?([a-z_]+)>", rule.rule)]
            params += [{"name": name, "in": "query", "required": False, "schema": schema}
                       for name, schema in meta["query"].items()]
            if params:
                op["parameters"] = params
            if meta["body"] and method in ("POST", "PUT", "PATCH"):
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": meta["body"]}}}
            for code in meta["errors"] + ((400,) if meta["body"] else ()):
                op["responses"][str(code)] = {"description": "Error", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            if not meta["public"]:
                op["security"] = [{"bearer": []}]
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Kassa API", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A personal API token from your profile page."}},
        },
    }
