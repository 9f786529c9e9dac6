"""Which values of a config are credentials, and the repr that hides them."""

from __future__ import annotations

from router.config.secrets import config_secrets, declared_secrets, redact_url
from router.config.settings import AuthConfig, RedisConfig
from router.yamlsource import load_yaml


def test_redact_url():
    assert redact_url("redis://user:pa55word@h:1/0") == "redis://user:[redacted]@h:1/0"
    assert redact_url("http://h/x") == "http://h/x"
    assert redact_url("http://[bad") == "http://[bad"


def test_config_secrets_finds_environment_values_credential_keys_and_url_parts():
    text = (
        "a: ${FROM_ENV}\n"
        "nested: {api_key: key-value, other: plain}\n"
        "tokens: [tok-one, tok-two]\n"
        "url: 'https://u:p%40ss@h/x?token=q-token&page=2'\n"
    )
    loaded = load_yaml(text, "f", {"FROM_ENV": "env-value"})
    assert config_secrets(loaded) == {
        "env-value",
        "key-value",
        "tok-one",
        "tok-two",
        "p%40ss",
        "p@ss",
        "q-token",
    }


def test_declared_secrets_follow_the_schema_meta():
    schema = {
        "client": {"type": "string", "meta": {"secret": True}},
        "nested": {"type": "dict", "schema": {"pin": {"meta": {"secret": True}}}},
        "plain": {"type": "string"},
    }
    doc = {"client": "c-secret", "nested": {"pin": 12345}, "plain": "shown"}
    assert declared_secrets(doc, schema) == {"c-secret", "12345"}


def test_config_objects_hide_credentials_in_their_repr():
    auth = AuthConfig(keys=("k-secret",), header="x-key", options={})
    assert "k-secret" not in repr(auth) and "keys=[redacted]" in repr(auth)
    redis = RedisConfig(url="redis://:pw-secret@h:1")
    assert "pw-secret" not in repr(redis) and "[redacted]@h:1" in repr(redis)
