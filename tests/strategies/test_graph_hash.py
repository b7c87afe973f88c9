"""canonical_hash, the one config hash: step hashes (the manifests' config_hash, the step index) and run ids."""

import hashlib

from rag_jobs.strategies.graph import canonical_hash


def test_canonical_hash_is_sha256_of_canonical_json():
    # sorted keys, no white space, non-ASCII escaped: pinned, since run ids and step hashes are made of it
    expected = hashlib.sha256(b'{"a":1,"b":[1,2],"c":{"d":"\\u00e9"}}').hexdigest()
    assert canonical_hash({"c": {"d": "é"}, "b": [1, 2], "a": 1}) == expected
    assert canonical_hash({"a": 1, "b": [1, 2], "c": {"d": "é"}}) == expected
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 1.5})
