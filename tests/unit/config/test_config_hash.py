"""Version and per-cluster hashes used by reload to skip or reuse work."""

from __future__ import annotations

import hashlib

from config_helpers import Loader

BASE = """\
listeners:
  - name: public
    address: 127.0.0.1:30000
    routes: [{cluster: a}, {cluster: b}]
clusters:
  - name: a
    endpoints: [http://127.0.0.1:31001]
  - name: b
    endpoints: [http://127.0.0.1:31002]
"""


def test_version_hash_is_a_prefix_of_the_file_sha256(load: Loader) -> None:
    config = load(BASE)
    assert config.version_hash == hashlib.sha256(BASE.encode()).hexdigest()[:16]
    assert load(BASE + "# a comment\n").version_hash != config.version_hash


def test_cluster_hash_ignores_changes_elsewhere(load: Loader) -> None:
    before = load(BASE)
    after = load(
        BASE.replace("http://127.0.0.1:31002", "http://127.0.0.1:31003")
        + "logging: {level: debug}\n"
    )
    assert before.cluster("a").config_hash == after.cluster("a").config_hash
    assert before.cluster("b").config_hash != after.cluster("b").config_hash


def test_cluster_hash_ignores_spelling_of_defaults(load: Loader) -> None:
    explicit = BASE.replace(
        "  - name: a\n    endpoints: [http://127.0.0.1:31001]\n",
        "  - name: a\n    protocol: openai_http\n    lb_policy: round_robin\n"
        "    endpoints: [{url: 'http://127.0.0.1:31001', weight: 1}]\n",
    )
    assert load(BASE).cluster("a").config_hash == load(explicit).cluster("a").config_hash


def test_cluster_hash_changes_with_the_cluster(load: Loader) -> None:
    before = load(BASE).cluster("a").config_hash
    changed = BASE.replace(
        "  - name: a\n    endpoints: [http://127.0.0.1:31001]\n",
        "  - name: a\n    endpoints: [http://127.0.0.1:31001]\n    timeouts: {connect: 1s}\n",
    )
    assert load(changed).cluster("a").config_hash != before


def test_cluster_hash_follows_secret_values(load: Loader) -> None:
    text = BASE.replace("[http://127.0.0.1:31001]", "['http://127.0.0.1:${PORT}']")
    one = load(text, env={"PORT": "1"}).cluster("a").config_hash
    two = load(text, env={"PORT": "2"}).cluster("a").config_hash
    assert one != two
