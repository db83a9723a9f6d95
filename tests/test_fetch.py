"""`shiftbench data fetch` / `verify` against a local HTTP server (Range support) and file:// URLs."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from tiny_formats import write_cifar10, write_mnist, write_mnist_c

from shiftbench.cli.main import main
from shiftbench.core.errors import UserError
from shiftbench.data import load_dataset, load_manifest
from shiftbench.data.fetch import fetch

PAYLOAD = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))


class Server:
    """Serves `files` (name -> bytes); honours `Range: bytes=N-` unless `ignore_range`; a name in `cut`
    announces its full length but the connection closes after cut[name] bytes (once)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng and not server.ignore_range else 0
                if start >= len(body) and rng:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if name in server.cut:
                    chunk = chunk[: server.cut.pop(name)]
                self.wfile.write(chunk)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()



def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def manifest(proj, name: str, files: str, loader: str = "mnist", extra: str = "") -> None:
    (proj / "data_manifests" / f"{name}.yaml").write_text(f"name: {name}\nloader: {loader}\n{extra}files:\n{files}")


def entry(path: str, url: str, body: bytes | None = None, *, digest: str | None = None, algo: str = "sha256",
          extract: bool = False) -> str:
    digest = digest or (hashlib.new(algo, body).hexdigest())
    return f"  - {{path: {path}, url: '{url}', {algo}: '{digest}', extract: {str(extract).lower()}}}\n"


def folder(proj, name: str) -> Path:
    return proj.parent / "data" / name


def quiet(*_):
    pass


def test_good_file_is_downloaded_verified_and_verify_passes(proj, server, capsys):
    server.files["blob.bin"] = PAYLOAD
    manifest(proj, "blob", entry("blob.bin", f"{server.url}/blob.bin", PAYLOAD))
    assert main(["data", "fetch", "blob", "--quiet"]) == 0
    assert (folder(proj, "blob") / "blob.bin").read_bytes() == PAYLOAD
    assert not list(folder(proj, "blob").glob("*.part"))
    assert main(["data", "verify", "blob"]) == 0
    # tampering afterwards is caught
    raw = bytearray(PAYLOAD)
    raw[1000] ^= 1
    (folder(proj, "blob") / "blob.bin").write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["data", "verify", "blob"]) == 1
    assert "MISMATCH" in capsys.readouterr().err


def test_truncated_download_resumes_with_a_range_request(proj, server):
    server.files["blob.bin"] = PAYLOAD
    server.cut["blob.bin"] = 120_000  # the first response dies after 120 kB
    manifest(proj, "blob", entry("blob.bin", f"{server.url}/blob.bin", PAYLOAD))
    with pytest.raises(UserError, match="partial file is kept"):
        fetch(load_manifest("blob"), progress=False, log=quiet)
    part = folder(proj, "blob") / "blob.bin.part"
    assert part.stat().st_size == 120_000 and not (folder(proj, "blob") / "blob.bin").exists()
    fetch(load_manifest("blob"), progress=False, log=quiet)
    assert server.requests[-1] == ("blob.bin", "bytes=120000-")
    assert (folder(proj, "blob") / "blob.bin").read_bytes() == PAYLOAD and not part.exists()


def test_server_that_ignores_range_restarts_the_file(proj, server):
    server.files["blob.bin"] = PAYLOAD
    server.ignore_range = True
    manifest(proj, "blob", entry("blob.bin", f"{server.url}/blob.bin", PAYLOAD))
    part = folder(proj, "blob") / "blob.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:5000])
    fetch(load_manifest("blob"), progress=False, log=quiet)
    assert server.requests[-1][1] == "bytes=5000-"
    assert (folder(proj, "blob") / "blob.bin").read_bytes() == PAYLOAD  # not the 5000 bytes twice


def test_wrong_hash_is_refused_moved_aside_and_never_used(proj, server, capsys):
    """A server serving other bytes than the manifest's: one-line error, .corrupt file, nothing loadable."""
    import gzip

    from tiny_formats import idx_bytes

    real = gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8), 0x803))
    forged = gzip.compress(idx_bytes(np.full((2, 28, 28), 255, np.uint8), 0x803))
    server.files["t10k-images-idx3-ubyte.gz"] = forged
    manifest(proj, "digitsx", entry("t10k-images-idx3-ubyte.gz", f"{server.url}/t10k-images-idx3-ubyte.gz", real))
    code = main(["data", "fetch", "digitsx", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "does not match the manifest (sha256" in err and "nothing was used" in err
    here = folder(proj, "digitsx")
    assert not (here / "t10k-images-idx3-ubyte.gz").exists() and not (here / "t10k-images-idx3-ubyte.gz.part").exists()
    assert (here / "t10k-images-idx3-ubyte.gz.corrupt").read_bytes() == forged
    assert main(["data", "verify", "digitsx"]) == 1


def test_md5_only_manifest_is_checked_too(proj, server):
    server.files["blob.bin"] = PAYLOAD
    manifest(proj, "blob", entry("blob.bin", f"{server.url}/blob.bin", PAYLOAD, algo="md5"))
    fetch(load_manifest("blob"), progress=False, log=quiet)
    manifest(proj, "blob2", entry("blob.bin", f"{server.url}/blob.bin", digest="0" * 32, algo="md5"))
    with pytest.raises(UserError, match="md5 "):
        fetch(load_manifest("blob2"), progress=False, log=quiet)


def test_file_url_downloads_and_resumes(proj, tmp_path):
    src = tmp_path / "remote" / "blob.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    manifest(proj, "blob", entry("blob.bin", src.as_uri(), PAYLOAD))
    part = folder(proj, "blob") / "blob.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:7777])
    fetch(load_manifest("blob"), progress=False, log=quiet)
    assert (folder(proj, "blob") / "blob.bin").read_bytes() == PAYLOAD


def test_cifar_tar_gz_is_verified_extracted_and_loadable(proj, server, tmp_path):
    staging = tmp_path / "staging"
    written = write_cifar10(staging / "cifar-10-batches-py")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    server.files["cifar-10-python.tar.gz"] = buf.getvalue()
    text = (proj / "data_manifests" / "cifar10.yaml").read_text()
    text = text.replace("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", f"{server.url}/cifar-10-python.tar.gz")
    text = text.replace("6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", sha256(buf.getvalue()))
    text = text.replace("    md5: c58f30108f718f92721af3b95e74349a\n", "")
    (proj / "data_manifests" / "cifar10.yaml").write_text(text)
    with pytest.raises(UserError, match="run `shiftbench data fetch cifar10`"):
        load_dataset("cifar10")
    assert main(["data", "fetch", "cifar10", "--quiet"]) == 0
    assert load_dataset("cifar10").test.labels.tolist() == written["test_y"]
    n = len(server.requests)
    assert main(["data", "fetch", "cifar10", "--quiet"]) == 0 and len(server.requests) == n  # nothing downloaded again


def test_mnist_c_zip_is_extracted_into_its_root(proj, server, tmp_path):
    staging = tmp_path / "staging"
    clean = write_mnist(staging / "plain")
    write_mnist_c(staging / "mnist_c", clean)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted((staging / "mnist_c").rglob("*.npy")):
            z.write(p, p.relative_to(staging).as_posix())
    server.files["mnist_c.zip"] = buf.getvalue()
    manifest(proj, "mc", entry("mnist_c.zip", f"{server.url}/mnist_c.zip", buf.getvalue(), extract=True),
             loader="mnist_c", extra="root: mnist_c\nparams: {test_corruptions: [fog]}\n")
    fetch(load_manifest("mc"), progress=False, log=quiet)
    assert load_dataset("mc").test.images.shape == (7, 1, 28, 28)


def test_archive_escaping_the_data_folder_is_refused(proj, server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        t.addfile(info, io.BytesIO(b"evil"))
    server.files["bad.tar.gz"] = buf.getvalue()
    manifest(proj, "bad", entry("bad.tar.gz", f"{server.url}/bad.tar.gz", buf.getvalue(), extract=True))
    with pytest.raises(UserError, match="leaves the data folder"):
        fetch(load_manifest("bad"), progress=False, log=quiet)
    assert not (proj.parent / "data" / "evil.txt").exists()


def test_a_failing_url_falls_back_to_the_mirrors(proj, server):
    server.files["mirror/blob.bin"] = PAYLOAD
    text = entry("blob.bin", f"{server.url}/gone/blob.bin", PAYLOAD).replace(
        ", extract", f", mirrors: ['{server.url}/mirror/blob.bin'], extract")
    manifest(proj, "blob", text)
    fetch(load_manifest("blob"), progress=False, log=quiet)
    assert [r[0] for r in server.requests] == ["gone/blob.bin", "mirror/blob.bin"]
    assert (folder(proj, "blob") / "blob.bin").read_bytes() == PAYLOAD


def test_a_failed_download_says_whether_a_partial_file_was_kept(proj, server):
    manifest(proj, "blob", entry("blob.bin", f"{server.url}/missing.bin", PAYLOAD))  # 404: not one byte arrives
    with pytest.raises(UserError, match="nothing was kept") as e:
        fetch(load_manifest("blob"), progress=False, log=quiet)
    assert "is kept" not in str(e.value) and not list(folder(proj, "blob").glob("*.part"))


def test_bad_downloads_leave_one_corrupt_copy_not_a_pile(proj, server):
    forged = PAYLOAD[::-1]
    server.files["blob.bin"] = forged
    manifest(proj, "blob", entry("blob.bin", f"{server.url}/blob.bin", PAYLOAD))
    for _ in range(3):
        with pytest.raises(UserError, match="does not match the manifest"):
            fetch(load_manifest("blob"), progress=False, log=quiet)
    assert sorted(p.name for p in folder(proj, "blob").iterdir()) == ["blob.bin.corrupt"]
    assert (folder(proj, "blob") / "blob.bin.corrupt").read_bytes() == forged


def test_errors_name_the_manifest_file_they_come_from(proj, capsys):
    (proj / "data_manifests" / "empty.yaml").write_text("name: empty\nloader: mnist\n")
    assert main(["data", "fetch", "empty", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{proj / 'data_manifests' / 'empty.yaml'}: the manifest lists no files" in err
    (proj / "data_manifests" / "other.yaml").write_text("name: empty\nloader: mnist\n")
    assert main(["data", "fetch", "other", "--quiet"]) == 2
    assert "other.yaml: name: must equal the file's name 'other'" in capsys.readouterr().err


def test_an_archive_member_cannot_replace_the_verified_archive(proj, server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("pack.tar.gz")  # same name as the archive itself
        info.size = 4
        t.addfile(info, io.BytesIO(b"evil"))
    archive = buf.getvalue()
    server.files["pack.tar.gz"] = archive
    manifest(proj, "pack", entry("pack.tar.gz", f"{server.url}/pack.tar.gz", archive, extract=True))
    with pytest.raises(UserError, match="would replace a file of the manifest"):
        fetch(load_manifest("pack"), progress=False, log=quiet)
    assert (folder(proj, "pack") / "pack.tar.gz").read_bytes() == archive
    assert main(["data", "verify", "pack"]) == 0


def test_a_file_without_a_hash_is_fetched_with_the_sha256_it_saw_printed(proj, tmp_path, capsys):
    (tmp_path / "nohash.bin").write_bytes(PAYLOAD)
    manifest(proj, "nohash", f"  - {{path: nohash.bin, url: '{(tmp_path / 'nohash.bin').as_uri()}'}}\n")
    assert main(["data", "fetch", "nohash", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"not verified (sha256 {sha256(PAYLOAD)})" in out
