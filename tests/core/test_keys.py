"""Key files: each way a key file can be wrong is one clear KeyFileError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aurora.errors import KeyFileError
from aurora.keys import ensure_keypair, load_private_key, load_public_key


def test_a_generated_pair_loads(tmp_path: Path) -> None:
    assert ensure_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    private, public = load_private_key(tmp_path / "k.pem"), load_public_key(tmp_path / "k.pub")
    assert private.public_key().public_bytes_raw() == public.public_bytes_raw()


@pytest.mark.parametrize("load", [load_private_key, load_public_key])
def test_bad_key_files_are_one_clear_error(tmp_path: Path, load: object) -> None:
    what = "private key" if load is load_private_key else "public key"
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other = (ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
             if load is load_private_key else
             ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "garbage.pem").write_text("not a key\n")
    (tmp_path / "ec.pem").write_bytes(other)
    (tmp_path / "dir.pem").mkdir()
    cases = {"missing.pem": "is missing (run `aurora init`)", "dir.pem": "is unreadable",
             "garbage.pem": "is not a PEM", "ec.pem": "is not an Ed25519 key"}
    for name, says in cases.items():
        with pytest.raises(KeyFileError) as caught:
            load(tmp_path / name)  # type: ignore[operator]
        assert str(caught.value).startswith(f"{what} {tmp_path / name} {says}")
