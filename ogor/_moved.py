"""Old import paths of the modules that moved into rooms, kept working with a warning.

Until version 0.1 every module sat directly under ``ogor/`` (``ogor.generate``, ``ogor.oil``,
...). Scripts written against those paths keep working: importing one builds a module holding the
same public names from their new homes and emits a ``DeprecationWarning`` that names the new
path. A table here, rather than a thin file per old path, keeps ``ogor/`` showing only its rooms.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings

#: old module -> (its new home, [(module, "public names it gives")]).
MOVED: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "ogor.generate": ("ogor.generation.generate", [
        ("ogor.generation.generate", "PARTIAL_SUFFIX MODES generate_dataset"),
        ("ogor.generation.plan", "OCCLUDED_SUFFIX occluded_name"),
        ("ogor.generation.summary", "GenerationSummary"),
        ("ogor.imageio", "image_seed read_image encode_image"),
    ]),
    "ogor.manifest": ("ogor.generation.manifest", [
        ("ogor.generation.manifest", "MANIFEST_NAME MANIFEST_FORMAT MANIFEST_VERSION SCHEMA_NAME "
         "JOB_NAME JOURNAL_NAME manifest_schema validate_manifest dumps_manifest write_manifest "
         "check_finished read_manifest occlusion_flags ImageRow image_row summarize "
         "format_summary"),
        ("ogor.generation.verify", "VerifyReport verify_dataset"),
    ]),
    "ogor.preview": ("ogor.generation.preview", [
        ("ogor.generation.preview", "CELL_HW LABEL_H GAP make_preview"),
    ]),
    "ogor.oil": ("ogor.library", [
        ("ogor.library.oil", "INDEX_NAME INDEX_FORMAT INDEX_VERSION SCHEMA_NAME "
         "default_library_path index_schema OcclusionInstance library_fingerprint "
         "OcclusionLibrary"),
        ("ogor.library.png", "PNG_COMPRESSION encode_png decode_rgba"),
        ("ogor.library.writer", "check_rgba LibraryWriter make_parents remove_empty "
         "check_output_folder"),
    ]),
    "ogor.oil_render": ("ogor.library.render", [
        ("ogor.library.render.registry", "DEFAULT_SEED VARIANTS Renderer RENDERERS register "
         "list_renderers render_instance render_default_library"),
        ("ogor.library.render.canvas", "SUPERSAMPLE Colour Point Canvas shading ellipse_points "
         "rounded_rect_points jitter darker BLACK TYRE STEEL CHROME SKIN_TONES"),
    ]),
    "ogor.oil_import": ("ogor.library.importer", [
        ("ogor.library.importer", "MGCC_REPOSITORY MGCC_COMMIT MGCC_BASE_URL MGCC_FOLDER "
         "mgcc_sums_path read_sha256sums ImportItem discover import_folder fetch_mgcc"),
    ]),
    "ogor.oil_sheet": ("ogor.library.sheet", [
        ("ogor.library.sheet", "SheetLayout CELL PAD LABEL_WIDTH HEADER_HEIGHT sheet_layout "
         "render_sheet write_sheet"),
    ]),
    "ogor.taxonomy": ("ogor.library.taxonomy", [
        ("ogor.library.taxonomy", "POSITION_SETS MGCC_CORNERS default_taxonomy_path "
         "normalize_label OcclusionClass Taxonomy load_taxonomy"),
    ]),
    "ogor.placement": ("ogor.occlude.placement", [
        ("ogor.occlude.placement", "DELTA_LOW DELTA_HIGH MAX_ATTEMPTS InstanceLike Placement "
         "occluder_size largest_fitting_box sample_placement mgcc_code_placement"),
    ]),
    "ogor.selection": ("ogor.occlude.selection", [
        ("ogor.occlude.selection", "ImageItem collect_images target_count largest_remainder "
         "select_paper select_first_of_runs"),
    ]),
    "ogor.compose": ("ogor.occlude.compose", [
        ("ogor.occlude.compose", "rgba_to_premultiplied_bgra resize_premultiplied "
         "feather_alpha paste apply_placement occluded_fraction"),
    ]),
    "ogor.protocols": ("ogor.occlude.protocols", [
        ("ogor.occlude.protocols", "InstanceSource GenerationProtocol PaperProtocol "
         "MgccCodeProtocol PROTOCOLS list_protocols get_protocol"),
    ]),
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of :data:`MOVED` (only: it is consulted after the real finders)."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        new_home, groups = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {new_home}; import from there", DeprecationWarning,
            stacklevel=2,
        )
        module.__doc__ = f"Moved to :mod:`{new_home}`; this old path re-exports its names."
        names: list[str] = []
        for source, listed in groups:
            home = importlib.import_module(source)
            for name in listed.split():
                setattr(module, name, getattr(home, name))
                names.append(name)
        module.__all__ = names


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (once), so real modules always win."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
