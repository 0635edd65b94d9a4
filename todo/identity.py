"""Who is calling: decided here and nowhere else.

Today the caller is the user named in the path. To add JWT authentication, verify the token
in `current_owner` and answer 401/404 when its subject is not the path's user; routes,
services and queries take the owner from this dependency and need no change.
"""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path


async def current_owner(user_id: Annotated[UUID, Path(description="The owner of the tasks.")]) -> UUID:
    # async: no I/O here, so FastAPI need not hop to a worker thread to call it.
    return user_id


Owner = Annotated[UUID, Depends(current_owner)]
