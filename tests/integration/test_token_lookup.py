"""A bearer token's lookup, as the service makes it on every request (on PostgreSQL
straight to the driver): who it is, its roles, and every way it stops working, each at
once, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from pathway import Clinic
from pathway.domain.timeutil import utcnow
from pathway.errors import NotAuthenticated
from pathway.store import database
from pathway.store.tables import tokens


def test_a_token_is_its_user_until_it_expires_is_revoked_or_the_user_is_disabled(db_url: str) -> None:
    with Clinic.open(db_url) as clinic:
        ids = clinic.identities
        ids.add_user("tess", ["coordinator", "physician"])
        token = ids.create_token("tess", expires_days=30)["token"]
        who = ids.authenticate(token, "physician")
        assert (who.user, who.roles, who.role) == ("tess", ("coordinator", "physician"), "physician")
        with pytest.raises(NotAuthenticated, match="not known"):
            ids.authenticate(token[:-2] + "xx")

        engine = database.create(db_url)  # another writer, as `pathway tokens` from a shell
        try:
            soon = utcnow() + timedelta(seconds=2)
            with engine.begin() as conn:
                conn.execute(update(tokens).values(expires_at=soon))
            assert ids.authenticate(token, "coordinator").user == "tess"  # not yet
            past = utcnow() - timedelta(seconds=1)
            with engine.begin() as conn:
                conn.execute(update(tokens).values(expires_at=past))
        finally:
            engine.dispose()
        with pytest.raises(NotAuthenticated, match="expired"):
            ids.authenticate(token, "coordinator")

        other = ids.create_token("tess")["token"]
        assert ids.authenticate(other, "coordinator").user == "tess"
        ids.disable("tess")
        with pytest.raises(NotAuthenticated, match="disabled"):
            ids.authenticate(other, "coordinator")
        ids.disable("tess", enable=True)
        assert ids.authenticate(other, "coordinator").user == "tess"
        ids.revoke("tess")
        with pytest.raises(NotAuthenticated, match="revoked"):
            ids.authenticate(other, "coordinator")
