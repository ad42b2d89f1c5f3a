"""`aurora ledger ...`: outputs, JSON shapes, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_support import ORIGIN, CliResult, both, fill, raw_sql

from aurora.home import Home
from aurora.keys import Ed25519PrivateKey, load_private_key
from aurora.ledger import Entry, Ledger, Receipt
from aurora.ledger.note import Checkpoint, Signer, sign_checkpoint
from aurora.wire import new_order, order_sha256, sign_ack, sign_order

Cli = Callable[..., CliResult]
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def filled(home: Path) -> Path:
    with Ledger.open(home) as ledger:
        fill(ledger, 12)
    return home


def one_error_line(result: CliResult, code: int, text: str) -> None:
    assert result.code == code, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.err
    assert "Traceback" not in result.err + result.out


@both
def test_root_prove_consistency_json_shapes(filled: Path, cli: Cli) -> None:
    root = json.loads(cli("root", "--json").out)
    assert set(root) == {"tree_size", "root_hash"} and root["tree_size"] == 12
    assert HEX64.fullmatch(root["root_hash"])
    proof = json.loads(cli("prove", "--index", "3", "--json").out)
    assert list(proof) == ["tree_size", "leaf_index", "leaf_hash", "root_hash", "proof"]
    assert proof["root_hash"] == root["root_hash"] and all(HEX64.fullmatch(h)
                                                           for h in proof["proof"])
    assert json.loads(cli("prove", "--index", "3", "--size", "5", "--json").out)["tree_size"] == 5
    cons = json.loads(cli("consistency", "--old", "4", "--json").out)
    assert list(cons) == ["old_size", "new_size", "old_root", "new_root", "proof"]
    assert (cons["old_size"], cons["new_size"]) == (4, 12)
    text = cli("root").out
    assert f"tree size 12\nroot {root['root_hash']}" in text
    assert "proof (" in cli("prove", "--index", "0").out
    assert "old size 4" in cli("consistency", "--old", "4", "--new", "12").out


@both
def test_verify_audit_ok_and_json(filled: Path, cli: Cli) -> None:
    result = cli("verify-audit")
    assert result.code == 0 and "tree size 12" in result.out and "root " in result.out
    report = json.loads(cli("verify-audit", "--json").out)
    assert report["ok"] is True and report["tree_size"] == 12 and report["unsigned_tail"] == 0


@both
def test_verify_audit_tampered(filled: Path, cli: Cli, db: Path) -> None:
    raw_sql(db, "UPDATE audit_log SET tenant_id = 'evil' WHERE seq = 7")
    result = cli("verify-audit")
    assert result.code == 1
    assert "AUDIT LOG TAMPERED" in result.out and "leaf 7" in result.out
    assert "tenant_id" in result.out
    report = json.loads(cli("verify-audit", "--json").out)
    assert report == {"ok": False, "tampered": True, "first_bad_index": 7,
                      "problem": report["problem"]}


@both
def test_checkpoint_and_append_and_show(filled: Path, cli: Cli) -> None:
    note = cli("checkpoint").out
    assert note.startswith(f"{ORIGIN}\n12\n") and "\n\n\u2014 " in note
    as_json = json.loads(cli("checkpoint", "--json").out)
    assert as_json["tree_size"] == 12 and as_json["checkpoint"] == note
    result = cli("append", "--kind", "deploy", "--data", '{"version": "1.0.0"}', "--tenant",
                 "tenant-a", "--treaty", "AURORA-AKASH-001", "--subject", "s", "--json")
    receipt = json.loads(result.out)
    assert receipt["leaf_index"] == 12 and receipt["entry"]["data"] == {"version": "1.0.0"}
    assert receipt["entry"]["treaty_id"] == "AURORA-AKASH-001"
    assert "appended leaf 13" in cli("append", "--kind", "note").out
    shown = json.loads(cli("show", "--index", "12", "--json").out)
    assert shown["kind"] == "deploy" and shown["entry"]["tenant_id"] == "tenant-a"
    assert '"kind": "deploy"' in cli("show", "--index", "12").out


@both
@pytest.mark.parametrize("args,code,text", [
    (("append", "--kind", "note", "--data", "{bad"), 2, "--data is not valid JSON"),
    (("append", "--kind", "note", "--data", '{"a": 1, "a": 2}'), 2, "duplicate key"),
    (("append", "--kind", "note", "--data", "[1]"), 2, "must be a JSON object"),
    (("append", "--kind", "Not A Kind"), 2, "entry kind"),
    (("prove", "--index", "99"), 2, "beyond the tree (size 12)"),
    (("prove", "--index", "1", "--size", "40"), 2, "beyond the tree"),
    (("consistency", "--old", "0"), 2, "old size 0"),
    (("show", "--index", "12"), 2, "beyond the tree"),
    (("verify-proof", "nope.json"), 2, "does not exist"),
    (("restore", "nope.db.gz"), 2, "no backup file"),
    (("backup", "--every", "soon"), 2, "--every"),
    (("backup", "--name", "../x.db.gz"), 2, "plain file name"),
])
def test_bad_input_is_one_error_line(filled: Path, cli: Cli, args: tuple[str, ...], code: int,
                                     text: str) -> None:
    one_error_line(cli(*args), code, text)


@both
def test_nothing_is_stored_after_bad_input(filled: Path, cli: Cli) -> None:
    cli("append", "--kind", "note", "--data", "{bad")
    cli("append", "--kind", "BAD")
    assert json.loads(cli("root", "--json").out)["tree_size"] == 12
    assert cli("verify-audit").code == 0


@both
def test_missing_private_key(filled: Path, cli: Cli) -> None:
    Home(filled).ledger_key.unlink()
    one_error_line(cli("append", "--kind", "note"), 2, "ledger.key is missing")
    one_error_line(cli("checkpoint"), 2, "missing")
    assert cli("verify-audit").code == 0  # readers need only the verifier key
    assert cli("root").code == 0


@pytest.mark.sqlite_mode
def test_missing_and_corrupt_databases(home: Path, cli: Cli, tmp_path: Path) -> None:
    one_error_line(cli("root"), 2, "no ledger database")
    one_error_line(cli("verify-audit"), 2, "no ledger database")
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"\x00garbage" * 512)
    for command in (("verify-audit",), ("root",), ("append", "--kind", "note"), ("integrity",),
                    ("prove", "--index", "0")):
        one_error_line(cli(*command, "--db", str(corrupt)), 2, "corrupt or not a SQLite")
    assert corrupt.read_bytes() == b"\x00garbage" * 512


def test_checkpoint_signed_by_another_key(filled: Path, cli: Cli, tmp_path: Path) -> None:
    with Ledger.open(filled, readonly=True) as reader:
        head = reader.tree_head()
    forged = tmp_path / "forged.checkpoint"
    forged.write_text(sign_checkpoint(Checkpoint(ORIGIN, head.size, head.root),
                                      Signer(ORIGIN, Ed25519PrivateKey.generate())))
    result = cli("verify-audit", "--checkpoint", str(forged))
    assert result.code == 1 and "not signed by a trusted key" in result.out
    cli("prove", "--index", "2", "--json")
    proof = tmp_path / "p.json"
    proof.write_text(cli("prove", "--index", "2", "--json").out)
    one_error_line(cli("verify-proof", str(proof), "--checkpoint", str(forged)), 1,
                   "not signed by a trusted key")


@pytest.mark.sqlite_mode
def test_verify_proof_offline(filled: Path, cli: Cli, tmp_path: Path) -> None:
    cli("checkpoint")
    inclusion = tmp_path / "inclusion.json"
    inclusion.write_text(cli("prove", "--index", "5", "--json").out)
    consistency = tmp_path / "consistency.json"
    consistency.write_text(cli("consistency", "--old", "3", "--json").out)
    at_12 = tmp_path / "checkpoint-12"
    at_12.write_text(Home(filled).checkpoint_file.read_text())
    ack, receipt = record_order(filled)
    body = tmp_path / "bridge-200.json"
    body.write_text(json.dumps({**ack, "receipt": receipt.to_json()}))
    bare = tmp_path / "receipt.json"
    bare.write_text(json.dumps(receipt.to_json()))
    Home(filled).ledger_db.unlink()  # offline: no database needed
    result = cli("verify-proof", str(inclusion), "--checkpoint", str(at_12))
    assert result.code == 0 and "proof OK" in result.out
    assert json.loads(cli("verify-proof", str(consistency), "--json", "--checkpoint",
                          str(at_12)).out)["kind"] == "consistency"
    assert "entry 12 (order)" in cli("verify-proof", str(body)).out
    assert cli("verify-proof", str(bare)).code == 0

    doc = json.loads(inclusion.read_text())
    doc["proof"][0] = doc["proof"][0][:-1] + ("0" if doc["proof"][0][-1] != "0" else "1")
    inclusion.write_text(json.dumps(doc))
    one_error_line(cli("verify-proof", str(inclusion), "--checkpoint", str(at_12)), 1,
                   "does not lead to the root")
    doc = json.loads(body.read_text())
    doc["receipt"]["entry"]["data"]["rtt_ms"] = 2
    body.write_text(json.dumps(doc))
    one_error_line(cli("verify-proof", str(body)), 1, "does not hash to its leaf_hash")
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"hello": 1}')
    one_error_line(cli("verify-proof", str(unknown)), 1, "neither")
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    one_error_line(cli("verify-proof", str(not_json)), 2, "not JSON")


def record_order(home: Path, tenant: str = "tenant-42", provider: str = "akash"
                 ) -> tuple[dict[str, object], Receipt]:
    """What the bridge records for a filled order: a tenant-signed order, a provider-signed
    ACK committing to it, in an ``order`` entry; returns the ACK and the receipt."""
    where = Home(home)
    order = sign_order(new_order(treaty_id="AURORA-AKASH-001", tenant_id=tenant,
                                 region="us-west-2", gpu_hours=2.5),
                       load_private_key(where.tenant_key(tenant)))
    ack = sign_ack({"ack_id": "AKASH-JOB-0001", "provider_id": provider, "rtt_ms": 12.5,
                    "nonce": order["nonce"], "order_sha256": order_sha256(order),
                    "treaty_id": order["treaty_id"], "tenant_id": tenant,
                    "region": order["region"], "gpu_type": "H100",
                    "gpu_hours": order["gpu_hours"], "price_usd": 7.5,
                    "issued_at": "2026-01-01T00:00:00Z"},
                   load_private_key(where.provider_key(provider)))
    with Ledger.open(home) as ledger:
        receipt = ledger.append(Entry(kind="order", treaty_id="AURORA-AKASH-001",
                                      tenant_id=tenant, subject=str(order["nonce"]),
                                      data={"order": order, "ack": ack, "rtt_ms": 13.0}))
    return ack, receipt


@pytest.mark.parametrize("field,value", [("gpu_hours", 99), ("price_usd", 0),
                                         ("ack_id", "AKASH-JOB-9999")])
def test_verify_proof_refuses_an_answer_whose_ack_was_edited(
        filled: Path, cli: Cli, tmp_path: Path, field: str, value: object) -> None:
    ack, receipt = record_order(filled)
    body = tmp_path / "bridge-200.json"
    body.write_text(json.dumps({**ack, field: value, "receipt": receipt.to_json()}))
    one_error_line(cli("verify-proof", str(body)), 1,
                   f"the answer's ACK is not the one its receipt records (differs in {field})")


def test_verify_proof_checks_the_signatures_inside_the_receipt(
        filled: Path, cli: Cli, tmp_path: Path) -> None:
    # a correctly hashed, logged entry whose ACK is not the provider's: the provider's key
    # on file does not verify it, so the receipt proves nothing about the provider
    home = Home(filled)
    ack, receipt = record_order(filled)
    body = tmp_path / "ok.json"
    body.write_text(json.dumps({**ack, "receipt": receipt.to_json()}))
    assert "ACK AKASH-JOB-0001 signed by akash, order signed by tenant-42" in \
        cli("verify-proof", str(body)).out
    home.provider_pub("akash").write_bytes(home.provider_pub("ionet").read_bytes())
    one_error_line(cli("verify-proof", str(body)), 1, "provider signature does not verify")
    home.provider_pub("akash").unlink()
    one_error_line(cli("verify-proof", str(body)), 2, "akash.pub")


def test_verify_proof_needs_a_matching_checkpoint(filled: Path, cli: Cli, tmp_path: Path) -> None:
    cli("checkpoint")
    proof = tmp_path / "p.json"
    proof.write_text(cli("prove", "--index", "1", "--size", "6", "--json").out)
    one_error_line(cli("verify-proof", str(proof)), 1, "prove --index 1 --size 12")


@both
def test_integrity(filled: Path, cli: Cli) -> None:
    result = cli("integrity")
    assert result.code == 0 and "integrity_check: ok" in result.out and "tree size 12" in result.out
    report = json.loads(cli("integrity", "--json").out)
    assert report["integrity_check"] == "ok" and report["ok"] is True
