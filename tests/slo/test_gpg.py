"""Detached armored signatures with the gpg binary, in a throwaway GNUPGHOME."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aurora.slo import gpg


@pytest.fixture
def keyring(gnupghome: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> str:
    home, key_id = gnupghome
    monkeypatch.setenv("GNUPGHOME", str(home))
    return key_id


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "canary-72h.json"
    path.write_bytes(b'{"compliant":true,"treaty_id":"AURORA-AKASH-001"}')
    return path


def test_sign_writes_asc_and_sha256_that_the_usual_tools_accept(keyring: str, report: Path) -> None:
    signed = gpg.sign(report, keyring)
    assert signed.signature == report.with_name("canary-72h.json.asc")
    assert signed.signature.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    # the seed's verification command
    subprocess.run(["gpg", "--verify", str(signed.signature), str(report)], check=True,
                   capture_output=True)
    # sha256sum format, checkable next to the file
    assert signed.checksum.read_text() == f"{signed.sha256}  canary-72h.json\n"
    subprocess.run(["sha256sum", "-c", signed.checksum.name], cwd=report.parent, check=True,
                   capture_output=True)
    result = gpg.verify(report)
    assert result.ok and result.signature_ok and result.checksum_ok
    assert result.fingerprint and result.fingerprint.endswith(keyring)
    assert "observatory-test@aurora.invalid" in (result.signer or "")
    assert gpg.verify(report, expected_fingerprint=keyring).ok


def test_a_changed_report_fails_both_checks(keyring: str, report: Path) -> None:
    gpg.sign(report, keyring)
    report.write_bytes(report.read_bytes().replace(b"true", b"fals"))
    result = gpg.verify(report)
    assert not result.ok and not result.signature_ok and result.checksum_ok is False
    assert "BAD signature" in result.detail or "bad" in result.detail.lower()


def test_signature_by_another_key_is_refused_when_a_key_is_expected(keyring: str,
                                                                    report: Path) -> None:
    gpg.sign(report, keyring)
    result = gpg.verify(report, expected_fingerprint="0123456789ABCDEF")
    assert not result.ok and "not 0123456789ABCDEF" in result.detail


def test_missing_signature_is_a_failed_verification(report: Path) -> None:
    result = gpg.verify(report)
    assert not result.ok and "missing" in result.detail


def test_unknown_key_names_the_key_and_how_to_list_keys(keyring: str, report: Path) -> None:
    with pytest.raises(gpg.GpgError) as exc:
        gpg.sign(report, "6E4082C6A410F340")
    message = str(exc.value)
    assert "6E4082C6A410F340" in message and "gpg --list-secret-keys" in message
    assert "\n" not in message and exc.value.exit_code == 2
    assert not report.with_name("canary-72h.json.asc").exists()


def test_gnupghome_argument_overrides_the_environment(gnupghome: tuple[Path, str],
                                                      report: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home, key_id = gnupghome
    monkeypatch.setenv("GNUPGHOME", os.devnull)
    gpg.sign(report, key_id, gnupghome=home)
    assert gpg.verify(report, gnupghome=home).ok
