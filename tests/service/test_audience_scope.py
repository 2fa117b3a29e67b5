"""The `audiences` scope: AudienceService needs it, and it opens nothing else."""

from __future__ import annotations

import hashlib
from pathlib import Path

from service.audience_handler import SERVICE
from service.auth import Authenticator


def test_audience_service_needs_the_audiences_scope(tmp_path: Path) -> None:
    clients = tmp_path / "auth.toml"
    lines = []
    for name, scopes in (("crm", '["audiences"]'), ("shop", '["recommend"]')):
        digest = hashlib.sha256(f"{name}-token".encode()).hexdigest()
        lines.append(f'[[client]]\nname = "{name}"\ntoken_sha256 = "{digest}"\nscopes = {scopes}\n')
    clients.write_text("\n".join(lines))
    auth = Authenticator(clients)

    def decide(service: str, name: str) -> str:
        denied = auth.decide(service, (("authorization", f"Bearer {name}-token"),)).denied
        return denied[0] if denied else "allowed"

    assert SERVICE == "shifu.v1.AudienceService"
    assert decide(SERVICE, "crm") == "allowed"
    assert decide(SERVICE, "shop") == "permission_denied"
    assert decide("shifu.v1.RecommendService", "crm") == "permission_denied"
