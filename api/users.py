"""REST operations on people: your own profile (/api/me) and others' cards (/api/users).

Messages on the wire carry the author's ``username`` only; clients look the
display name and avatar up here, once per person, and cache them.
"""

from __future__ import annotations

# ninja.Query is typed as an annotation alias; see api/api.py.
from ninja.params.functions import Query

from api.api import AUTH_ERRORS, ApiRequest, api
from api.schemas import MeIn, MeOut, UserOut, UsersOut
from chat.errors import ChatError, ErrorCode
from chat.permissions import Account
from chat.protocol import ErrorFrame
from people import selectors, services

MAX_USERS = 100  # usernames one batch lookup may name
USERNAMES = Query(
    None,
    description=f"A username; repeat for more (at most {MAX_USERS}). Without: the people list",
)
SEARCH = Query(
    None,
    max_length=150,
    description="Without `username`: only people whose username or display name contains this",
)


def _me(user: Account) -> dict[str, int | str | bool]:
    card = selectors.card_of(user)
    return {
        "id": user.pk,
        "username": card.username,
        "is_staff": user.is_staff,
        "display_name": card.display_name,
        "color": card.color,
        "initials": card.initials,
    }


@api.get(
    "/me", summary="The authenticated user", **api.documented(answers={200: MeOut, **AUTH_ERRORS})
)
def me(request: ApiRequest) -> dict[str, int | str | bool]:
    """Who the token (or session) belongs to, with their display name and avatar."""
    return _me(request.auth)


@api.patch(
    "/me",
    summary="Change your display name",
    **api.documented(answers={200: MeOut, **AUTH_ERRORS, 400: ErrorFrame, 422: ErrorFrame}),
)
def me_update(request: ApiRequest, body: MeIn) -> dict[str, int | str | bool]:
    """Set the name others see for you (empty: your username); they see it on their next lookup."""
    services.display_name_set(user=request.auth, display_name=body.display_name)
    return _me(request.auth)


@api.get(
    "/users/{username}",
    summary="A person's profile card",
    **api.documented(answers={200: UserOut, **AUTH_ERRORS, 404: ErrorFrame}),
)
def user(request: ApiRequest, username: str) -> selectors.Card:
    """The card of the account ``username``: display name, staff or not, joined, avatar."""
    card = selectors.card_for(username=username)
    if card is None:
        raise ChatError(ErrorCode.USER_INVALID, "There is no account with that username.")
    return card


@api.get(
    "/users",
    summary="Several people's profile cards",
    **api.documented(answers={200: UsersOut, **AUTH_ERRORS, 400: ErrorFrame, 422: ErrorFrame}),
)
def users(
    request: ApiRequest,
    username: list[str] = USERNAMES,
    q: str = SEARCH,
) -> dict[str, list[selectors.Card]]:
    """The cards of the named accounts that exist (unknown names are left out), by username.

    Without ``username``: the active accounts (the first MAX_USERS by username),
    only those matching ``q`` if given: the people one may write to.
    """
    if not username:
        return {"users": selectors.cards_matching(query=q or "", limit=MAX_USERS)}
    if len(username) > MAX_USERS:
        raise ChatError(ErrorCode.BAD_REQUEST, f"At most {MAX_USERS} usernames at once.")
    return {"users": selectors.cards_for(usernames=username)}
