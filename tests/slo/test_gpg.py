"""Detached armored signatures with the gpg binary, in a throwaway GNUPGHOME; a published
document is signed by the run that wrote it or visibly unsigned."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aurora import gpg


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
    signed = gpg.publish(report, report.read_bytes(), keyring)
    assert signed.signature == report.with_name("canary-72h.json.asc")
    assert signed.signature.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    # the seed's verification command
    subprocess.run(["gpg", "--verify", str(signed.signature), str(report)], check=True,
                   capture_output=True)
    # sha256sum format, checkable next to the file
    assert signed.checksum.read_text() == f"{signed.sha256}  canary-72h.json\n"
    subprocess.run(["sha256sum", "-c", signed.checksum.name], cwd=report.parent, check=True,
                   capture_output=True)
    result = gpg.verify_detached(report)
    assert result.ok and result.signature_ok and result.checksum_ok
    assert result.fingerprint and result.fingerprint.endswith(keyring)
    assert "observatory-test@aurora.invalid" in (result.signer or "")
    assert gpg.verify_detached(report, expected_fingerprint=keyring).ok


def test_a_changed_report_fails_both_checks(keyring: str, report: Path) -> None:
    gpg.publish(report, report.read_bytes(), keyring)
    report.write_bytes(report.read_bytes().replace(b"true", b"fals"))
    result = gpg.verify_detached(report)
    assert not result.ok and not result.signature_ok and result.checksum_ok is False
    assert "BAD signature" in result.detail or "bad" in result.detail.lower()


def test_signature_by_another_key_is_refused_when_a_key_is_expected(keyring: str,
                                                                    report: Path) -> None:
    gpg.publish(report, report.read_bytes(), keyring)
    result = gpg.verify_detached(report, expected_fingerprint="0123456789ABCDEF")
    assert not result.ok and "not 0123456789ABCDEF" in result.detail


def test_missing_signature_is_a_failed_verification(report: Path) -> None:
    result = gpg.verify_detached(report)
    assert not result.ok and "missing" in result.detail


def test_unknown_key_names_the_key_and_how_to_list_keys(keyring: str, report: Path) -> None:
    with pytest.raises(gpg.GpgError) as exc:
        gpg.publish(report, report.read_bytes(), "6E4082C6A410F340")
    message = str(exc.value)
    assert "6E4082C6A410F340" in message and "gpg --list-secret-keys" in message
    assert "\n" not in message and exc.value.exit_code == 2
    assert not report.with_name("canary-72h.json.asc").exists()


def test_gnupghome_argument_overrides_the_environment(gnupghome: tuple[Path, str],
                                                      report: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home, key_id = gnupghome
    monkeypatch.setenv("GNUPGHOME", os.devnull)
    gpg.publish(report, report.read_bytes(), key_id, gnupghome=home)
    assert gpg.verify_detached(report, gnupghome=home).ok


def test_republishing_without_a_key_leaves_no_stale_signature(keyring: str, report: Path) -> None:
    gpg.publish(report, report.read_bytes(), keyring)
    assert gpg.verify_detached(report).ok
    new = b'{"compliant":false,"treaty_id":"AURORA-AKASH-001"}'
    published = gpg.publish(report, new)
    assert report.read_bytes() == new
    # the old signature described the old content: it must be gone, not left BAD beside it
    assert published.signature is None and not report.with_name("canary-72h.json.asc").exists()
    assert gpg.verify_checksum(report) is True
    assert "missing" in gpg.verify_detached(report).detail


def test_a_refused_key_changes_nothing(keyring: str, report: Path) -> None:
    gpg.publish(report, report.read_bytes(), keyring)
    before = {p.name: p.read_bytes() for p in report.parent.iterdir()}
    with pytest.raises(gpg.GpgError):
        gpg.publish(report, b"{}", "6E4082C6A410F340")
    assert {p.name: p.read_bytes() for p in report.parent.iterdir()} == before


def test_fingerprints_are_read_from_primary_keys_only() -> None:
    colons = (b"sec:u:255:22:AAAA:1:::u:::scESC:::+:::ed25519:::0:\n"
              b"fpr:::::::::" + b"A" * 40 + b":\n"
              b"ssb:u:255:18:BBBB:1::::::e:::+:::cv25519::\n"
              b"fpr:::::::::" + b"B" * 40 + b":\n")
    assert gpg._fingerprints(colons) == ["A" * 40]
