"""Audiences: tags computed from the event log (rules in TOML), and the published audience set."""
