"""Key routes (admin scope): list, create and revoke the server's API keys over HTTP.

The same store as ``facebank keys create/list/revoke`` on the server's machine; a key is shown
once, when it is created, and kept hashed.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from facebank.server.auth import ApiKeyInfo, KeyStoreError
from facebank.server.context import ServerContext, get_ctx, require_admin
from facebank.server.errors import ApiError
from facebank.server.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyList, errors

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require_admin)],
                   responses=errors(400, 401, 403, 422))

KeyIdPath = Path(..., pattern="^[0-9a-f]{8}$", description="the key's id (8 hex digits)")


def _listed(info: ApiKeyInfo) -> dict:
    return {"id": info.id, "name": info.name, "scope": info.scope, "created_at": info.created_at,
            "last_used_at": info.last_used_at, "revoked_at": info.revoked_at, "active": info.active}


@router.get("", response_model=ApiKeyList, summary="Every key (ids, names, scopes; never the secrets)")
def list_keys(ctx: ServerContext = Depends(get_ctx)) -> ApiKeyList:
    return ApiKeyList(keys=[ApiKey(**_listed(k)) for k in ctx.keys.keys()])  # noqa: SIM118


@router.post("", response_model=ApiKeyCreated, status_code=201, summary="Make a key (shown once)")
def create_key(body: ApiKeyCreate, ctx: ServerContext = Depends(get_ctx)) -> ApiKeyCreated:
    try:
        info, key = ctx.keys.create(body.name, body.scope)
    except KeyStoreError as exc:
        raise ApiError(422, "invalid_key_request", str(exc)) from None
    return ApiKeyCreated(**_listed(info), key=key)


@router.delete("/{key_id}", response_model=ApiKey, responses=errors(404), summary="Revoke a key")
def revoke_key(key_id: str = KeyIdPath, ctx: ServerContext = Depends(get_ctx)) -> ApiKey:
    """The key stops working at once."""
    try:
        return ApiKey(**_listed(ctx.keys.revoke(key_id)))
    except KeyStoreError as exc:
        raise ApiError(404, "key_not_found", str(exc)) from None
