"""`shiftbench data info` (one JSON object describing a set on disk) and `shiftbench data list` (present,
missing, or present with a checksum mismatch), on fixtures in the published layouts."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import yaml
from conftest import one_error_line, run_cli
from natural_fixtures import CIFAR10_CLASSES, cifar10_1_arrays, domainbed_folders


def test_data_info_of_a_test_set(proj, capsys, tmp_path):
    labels = [3, 3, 0, 9, 1, 3, 5]
    cifar10_1_arrays(tmp_path / "data" / "cifar10.1-v6", "v6", labels)
    code, out, err = run_cli(capsys, "data", "info", "cifar10.1-v6")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    info = json.loads(out)
    assert info["name"] == "cifar10.1-v6" and info["classes"] == CIFAR10_CLASSES
    assert info["n_images"] == {"source_train": 0, "source_val": 0, "test": 7}
    expected = np.bincount(labels, minlength=10).tolist()
    assert list(info["splits"]["test"]["images_per_class"].values()) == expected
    assert list(info["splits"]["test"]["images_per_class"]) == CIFAR10_CLASSES  # in label order
    assert "domains" not in info and "images_per_domain" not in info["splits"]["test"]


def test_data_info_counts_domains(proj, capsys, tmp_path):
    domains = ["art_painting", "cartoon", "photo", "sketch"]
    classes = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
    domainbed_folders(tmp_path / "data" / "pacs" / "PACS", domains, classes,
                      {"art_painting": 2, "cartoon": 1, "photo": 1, "sketch": 3})
    manifest = yaml.safe_load((proj / "data_manifests" / "pacs.yaml").read_text())
    manifest["params"]["size"] = 16
    (proj / "data_manifests" / "pacs.yaml").write_text(yaml.safe_dump(manifest))
    code, out, err = run_cli(capsys, "data", "info", "pacs", "--data-dir", str(tmp_path / "data"))
    assert code == 0, err
    info = json.loads(out)
    assert info["domains"] == domains and info["classes"] == classes
    assert info["splits"]["test"]["images_per_domain"] == {"art_painting": 14, "cartoon": 7, "photo": 7, "sketch": 21}
    for split in ("source_train", "source_val"):  # DomainBed's 20% hold-out, within each domain
        assert sum(info["splits"][split]["images_per_domain"].values()) == info["n_images"][split]
    assert info["n_images"]["source_train"] + info["n_images"]["source_val"] == info["n_images"]["test"] == 49
    assert info["splits"]["test"]["images_per_class"] == {c: 7 for c in classes}


def test_data_info_errors_are_one_line(proj, capsys, tmp_path):
    code, out, err = run_cli(capsys, "data", "info", "cifar10.2")
    assert code == 2 and out == ""
    assert "dataset 'cifar10.2' is not on disk" in one_error_line(err)
    folder = tmp_path / "data" / "cifar10.1-v4"
    cifar10_1_arrays(folder, "v4", [1, 2])
    (folder / "cifar10.1_v4_data.npy").write_bytes((folder / "cifar10.1_v4_data.npy").read_bytes()[:150])
    code, out, err = run_cli(capsys, "data", "info", "cifar10.1-v4")
    assert code == 2 and out == "" and str(folder / "cifar10.1_v4_data.npy") in one_error_line(err)


def serve_from(proj, tmp_path, name: str, files: dict[str, bytes]) -> None:
    """The manifest's files replaced by local copies (file:// URLs) with their true sha256 and size."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    path = proj / "data_manifests" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["files"] = []
    for fname, body in files.items():
        (mirror / fname).write_bytes(body)
        raw["files"].append({"path": fname, "url": (mirror / fname).as_uri(), "size": len(body),
                             "sha256": hashlib.sha256(body).hexdigest()})
    path.write_text(yaml.safe_dump(raw))


def line_of(out: str, name: str) -> str:
    return next(x for x in out.splitlines() if x.startswith(name + "  "))


def test_data_list_says_missing_present_or_mismatch(proj, capsys, tmp_path, monkeypatch):
    made = tmp_path / "made"
    cifar10_1_arrays(made, "v6", [1, 2, 3])
    files = {f: (made / f).read_bytes() for f in ("cifar10.1_v6_data.npy", "cifar10.1_v6_labels.npy")}
    serve_from(proj, tmp_path, "cifar10.1-v6", files)

    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0
    assert "not fetched (`shiftbench data fetch cifar10.1-v6`)" in line_of(out, "cifar10.1-v6")
    assert "not on disk (no plain download: see data_manifests/imagenet-sketch.yaml)" in line_of(out, "imagenet-sketch")

    assert run_cli(capsys, "data", "fetch", "cifar10.1-v6", "--quiet")[0] == 0
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and "on disk (verified)" in line_of(out, "cifar10.1-v6")

    labels = tmp_path / "data" / "cifar10.1-v6" / "cifar10.1_v6_labels.npy"
    body = bytearray(labels.read_bytes())
    body[-1] ^= 1  # one flipped bit, same size
    labels.write_bytes(bytes(body))
    code, out, _ = run_cli(capsys, "data", "list")
    line = line_of(out, "cifar10.1-v6")
    assert code == 1 and "CHECKSUM MISMATCH: cifar10.1_v6_labels.npy: sha256 " in line
    assert hashlib.sha256(bytes(body)).hexdigest() in line  # the sha256 it saw

    # above the hashing limit only the size is compared, unless --verify asks for every sha256
    from shiftbench.data import inventory

    monkeypatch.setattr(inventory, "HASH_LIMIT", 100)
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and "not checked: cifar10.1_v6_data.npy (size only), cifar10.1_v6_labels.npy (size only)" in \
        line_of(out, "cifar10.1-v6")
    assert run_cli(capsys, "data", "list", "--verify")[0] == 1
    labels.write_bytes(bytes(body) + b"x")
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 1 and f"CHECKSUM MISMATCH: cifar10.1_v6_labels.npy has {len(body) + 1} bytes, the manifest says {len(body)}" in line_of(out, "cifar10.1-v6")


def test_a_skipped_scenario_names_the_fetch_command_only_for_sets_that_have_a_download(proj):
    from shiftbench.cli.commands import how_to_get

    assert how_to_get("cifar10.1-v4").startswith("`shiftbench data fetch cifar10.1-v4`")
    for name in ("imagenet-val", "imagenet-val-256"):  # an account; a view of imagenet-val's files
        assert how_to_get(name) == f"no plain download: data_manifests/{name}.yaml says where to put it"
