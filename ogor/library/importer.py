"""Turn a folder of RGBA PNG occluders into a library, and fetch the MGCC paper's 60 occluders.

Two folder layouts are understood:

* flat, ``{class}{k}.png``: the layout of the MGCC repository (``bag1.png``,
  ``firehydrant3.png``, ``roadsign2.png``); the stem without its number is resolved through the
  taxonomy's aliases;
* one subfolder per class, ``<class>/<anything>.png``.

The MGCC images are not shipped with this project (the repository carries no licence): ``ogor
fetch-oil mgcc`` downloads them from the pinned commit and checks each against the checksums in
``oil_assets/mgcc-oil.sha256``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ogor.errors import LibraryError
from ogor.library.png import decode_rgba
from ogor.library.taxonomy import Taxonomy, load_taxonomy
from ogor.library.writer import LibraryWriter, check_output_folder, make_parents, remove_empty
from toreid.io import atomic_write_bytes, sha256_bytes, sha256_file

#: The MGCC repository and the commit whose ``dataset/occlusion_img/`` holds the paper's OIL.
MGCC_REPOSITORY = "littlexinyi/MGCC"
MGCC_COMMIT = "1f981d3f57f49647557c5f0bbdf26d88e59ef62c"
MGCC_BASE_URL = f"https://raw.githubusercontent.com/{MGCC_REPOSITORY}/{MGCC_COMMIT}"
MGCC_FOLDER = "dataset/occlusion_img"

_NUMBERED_STEM = re.compile(r"^(?P<stem>.*?)[\s_\-]*(?P<k>\d+)$")
_SUMS_LINE = re.compile(r"^(?P<hash>[0-9a-fA-F]{64}) [ *](?P<name>.+)$")


def mgcc_sums_path() -> Path:
    """The pinned ``HASH  name`` list of the 60 MGCC occluders shipped in ``oil_assets``."""
    import oil_assets

    return Path(oil_assets.__file__).resolve().parent / "mgcc-oil.sha256"


def read_sha256sums(path: str | Path) -> dict[str, str]:
    """Parse a ``sha256sum`` output file (``HASH  name`` or ``HASH *name`` per line).

    Raises:
        LibraryError: missing file, a malformed line, or a name listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise LibraryError(f"{path}: checksum file not found")
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _SUMS_LINE.match(line.rstrip("\r"))
        if match is None:
            raise LibraryError(f"{path}: line {number}: expected 'SHA256  name', got {line!r}")
        name = match["name"].removeprefix("./")
        if name in sums:
            raise LibraryError(f"{path}: line {number}: '{name}' is listed twice")
        sums[name] = match["hash"].lower()
    if not sums:
        raise LibraryError(f"{path}: no checksums in the file")
    return sums


@dataclass(frozen=True)
class ImportItem:
    """One PNG to import: its path, the name it has relative to the source folder, its class."""

    path: Path
    relative: str
    class_name: str
    order: tuple[int, int, str]


def _natural_number(stem: str) -> int:
    match = _NUMBERED_STEM.match(stem)
    return int(match["k"]) if match else 0


def discover(src: Path, taxonomy: Taxonomy) -> list[ImportItem]:
    """Find the PNGs of a flat ``{class}{k}.png`` or per-class-subfolder layout.

    Items are ordered by taxonomy class, then by number, then by name, so the same folder always
    gives the same instance ids.

    Raises:
        LibraryError: no PNG found, or a file whose class cannot be resolved (names the file).
    """
    if not src.is_dir():
        raise LibraryError(f"{src}: source folder not found")
    order = {name: i for i, name in enumerate(taxonomy.classes)}
    items: list[ImportItem] = []
    for path in sorted(src.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix.lower() == ".png":
            match = _NUMBERED_STEM.match(path.stem)
            stem = match["stem"] if match and match["stem"] else path.stem
            name = taxonomy.try_resolve(stem) or taxonomy.try_resolve(path.stem)
            if name is None:
                raise LibraryError(
                    f"{path}: field 'class': '{stem}' is not an occluder class or alias; valid "
                    "classes: " + ", ".join(taxonomy.classes)
                )
            key = (order[name], _natural_number(path.stem), path.name)
            items.append(ImportItem(path, path.name, name, key))
        elif path.is_dir():
            pngs = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".png" and p.is_file())
            if not pngs:
                continue
            name = taxonomy.try_resolve(path.name)
            if name is None:
                raise LibraryError(
                    f"{path}: field 'class': folder '{path.name}' is not an occluder class or "
                    "alias; valid classes: " + ", ".join(taxonomy.classes)
                )
            for png in pngs:
                relative = png.relative_to(src).as_posix()
                key = (order[name], _natural_number(png.stem), relative)
                items.append(ImportItem(png, relative, name, key))
    if not items:
        raise LibraryError(f"{src}: no PNG occluders found (expected {{class}}{{k}}.png files)")
    return sorted(items, key=lambda item: item.order)


def import_folder(
    src: str | Path,
    out: str | Path,
    *,
    sha256sums: str | Path | dict[str, str] | None = None,
    overwrite: bool = False,
    taxonomy: Taxonomy | None = None,
    description: str | None = None,
) -> Path:
    """Build a library at ``out`` from a folder of RGBA PNGs.

    Each PNG becomes one instance (detector ``import``, source image = its name in ``src``).
    With ``sha256sums``, every imported file must be listed there with a matching hash, and every
    listed file must exist, before anything is written.

    Raises:
        LibraryError: unknown class, checksum mismatch, PNG without alpha, output refused.
    """
    src = Path(src)
    out = Path(out)
    taxonomy = taxonomy or load_taxonomy()
    if out.resolve() == src.resolve() or out.resolve().is_relative_to(src.resolve()):
        raise LibraryError(f"{out}: the library may not be written inside the source folder {src}")
    check_output_folder(out, overwrite)
    items = discover(src, taxonomy)
    if sha256sums is not None:
        _verify_sums(src, items, sha256sums)
    with LibraryWriter(out, overwrite, taxonomy=taxonomy, description=description) as writer:
        for item in items:
            data = item.path.read_bytes()
            rgba = decode_rgba(data, item.path)
            if not rgba[:, :, 3].any():
                raise LibraryError(f"{item.path}: field 'alpha': the alpha channel is all zero")
            height, width = rgba.shape[:2]
            writer.add(
                item.class_name,
                rgba,
                detector="import",
                source={"image": item.relative, "box": [0, 0, width, height]},
            )
    return out


def _verify_sums(src: Path, items: list[ImportItem], sums: str | Path | dict[str, str]) -> None:
    where = "checksums" if isinstance(sums, dict) else str(sums)
    table = sums if isinstance(sums, dict) else read_sha256sums(sums)
    listed = {item.relative for item in items}
    for name in table:
        if name not in listed:
            raise LibraryError(f"{src / name}: listed in {where} but not found")
    for item in items:
        expected = table.get(item.relative)
        if expected is None:
            raise LibraryError(f"{item.path}: not listed in {where}; refusing an unverified file")
        actual = sha256_file(item.path)
        if actual != expected:
            raise LibraryError(
                f"{item.path}: field 'sha256': {actual[:12]}... does not match {where} "
                f"({expected[:12]}...)"
            )


def fetch_mgcc(
    out: str | Path,
    *,
    base_url: str = MGCC_BASE_URL,
    sha256sums: str | Path | None = None,
    overwrite: bool = False,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Download the MGCC paper's 60 occluders, verify every one, and import them into ``out``.

    Files are downloaded into a hidden temporary sibling of ``out`` and checked against the
    pinned checksums; only when all 60 are good is the library built (itself atomically). On
    any failure (offline, HTTP error, checksum mismatch) the temporary folder is removed and
    ``out`` is left as it was.

    Args:
        out: the library folder to create.
        base_url: repository root serving ``dataset/occlusion_img/<name>``; the default is the
            raw-file address of the pinned commit. A mirror can be given instead.
        sha256sums: a ``HASH  name`` file to verify against instead of the pinned list (for
            mirrors of other revisions, and for tests).
        overwrite: replace an existing library at ``out``.
        timeout: seconds per HTTP request.
        progress: called with one line per verified file, if given.

    Raises:
        LibraryError: one line naming the file that failed and why.
    """
    out = Path(out)
    check_output_folder(out, overwrite)
    sums_file = Path(sha256sums) if sha256sums is not None else mgcc_sums_path()
    sums = read_sha256sums(sums_file)
    created = make_parents(out.parent)
    download = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".download", dir=out.parent))
    try:
        for number, name in enumerate(sums, start=1):
            url = f"{base_url.rstrip('/')}/{MGCC_FOLDER}/{name}"
            data = _download(url, timeout)
            digest = sha256_bytes(data)
            if digest != sums[name]:
                raise LibraryError(
                    f"{url}: field 'sha256': downloaded {digest[:12]}..., expected "
                    f"{sums[name][:12]}... from {sums_file}; refusing a changed file"
                )
            atomic_write_bytes(download / name, data)
            if progress is not None:
                progress(f"[{number}/{len(sums)}] {name} ok")
        import_folder(
            download,
            out,
            sha256sums=sums,
            overwrite=overwrite,
            description=f"MGCC paper occluders, {MGCC_REPOSITORY}@{MGCC_COMMIT} {MGCC_FOLDER}",
        )
    except BaseException:
        shutil.rmtree(download, ignore_errors=True)
        remove_empty(created)
        raise
    shutil.rmtree(download, ignore_errors=True)
    return out


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise LibraryError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LibraryError(
            f"{url}: download failed ({reason}); are you offline? Nothing was written"
        ) from exc
    except ValueError as exc:
        raise LibraryError(f"{url}: field 'base-url': not a valid URL ({exc})") from exc
