"""The auth file parser on random and malformed text: a clean AuthFileError or valid clients, nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.auth import SCOPES, AuthFileError, parse

FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text("abcz-_ ", max_size=8), st.integers()),
        "token_sha256": st.one_of(st.text("0123456789abcdefX", min_size=60, max_size=66), st.integers()),
        "scopes": st.one_of(
            st.lists(st.sampled_from([*SCOPES, "admin"]), max_size=3), st.text("abc", max_size=5)
        ),
        "extra": st.booleans(),
    },
)


def as_toml(entries: list[dict]) -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, str):
            return f'"{v}"'  # the strategies draw no quotes or backslashes
        return str(v)

    return "\n".join("[[client]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in e.items()) for e in entries)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.text(max_size=80), st.lists(FIELDS, max_size=3).map(as_toml)))
def test_any_text_gives_valid_clients_or_a_clear_error(text: str) -> None:
    try:
        clients = parse(text, "clients.toml")
    except AuthFileError as error:
        assert str(error).startswith("clients.toml")
        return
    for client in clients:
        assert client.name and len(client.token_sha256) == 32 and client.scopes <= set(SCOPES)
