"""Old import paths (every module used to sit directly under ``ogor/``) keep working, with a
warning that names the new home; every public name the old module had is still there."""

from __future__ import annotations

import importlib
import sys

import pytest

#: old module -> (new home named in the warning, the public names the old module defined).
OLD_PATHS: dict[str, tuple[str, str]] = {
    "ogor.generate": ("ogor.generation.generate", "PARTIAL_SUFFIX OCCLUDED_SUFFIX MODES "
                      "GenerationSummary image_seed read_image encode_image occluded_name "
                      "generate_dataset"),
    "ogor.manifest": ("ogor.generation.manifest", "MANIFEST_NAME MANIFEST_FORMAT MANIFEST_VERSION "
                      "SCHEMA_NAME JOB_NAME JOURNAL_NAME manifest_schema validate_manifest "
                      "dumps_manifest write_manifest check_finished read_manifest "
                      "occlusion_flags ImageRow image_row summarize format_summary VerifyReport "
                      "verify_dataset"),
    "ogor.preview": ("ogor.generation.preview", "CELL_HW LABEL_H GAP make_preview"),
    "ogor.oil": ("ogor.library", "INDEX_NAME INDEX_FORMAT INDEX_VERSION SCHEMA_NAME "
                 "PNG_COMPRESSION default_library_path index_schema encode_png decode_rgba "
                 "OcclusionInstance library_fingerprint OcclusionLibrary check_rgba "
                 "LibraryWriter make_parents remove_empty check_output_folder"),
    "ogor.oil_render": ("ogor.library.render", "DEFAULT_SEED VARIANTS SUPERSAMPLE Colour Point "
                        "Canvas shading ellipse_points rounded_rect_points jitter darker "
                        "Renderer RENDERERS register list_renderers render_instance "
                        "render_default_library BLACK TYRE STEEL CHROME SKIN_TONES"),
    "ogor.oil_import": ("ogor.library.importer", "MGCC_REPOSITORY MGCC_COMMIT MGCC_BASE_URL "
                        "MGCC_FOLDER mgcc_sums_path read_sha256sums ImportItem discover "
                        "import_folder fetch_mgcc"),
    "ogor.oil_sheet": ("ogor.library.sheet", "SheetLayout CELL PAD LABEL_WIDTH HEADER_HEIGHT "
                       "sheet_layout render_sheet write_sheet"),
    "ogor.taxonomy": ("ogor.library.taxonomy", "POSITION_SETS MGCC_CORNERS "
                      "default_taxonomy_path normalize_label OcclusionClass Taxonomy "
                      "load_taxonomy"),
    "ogor.placement": ("ogor.occlude.placement", "DELTA_LOW DELTA_HIGH MAX_ATTEMPTS "
                       "InstanceLike Placement occluder_size largest_fitting_box "
                       "sample_placement mgcc_code_placement"),
    "ogor.selection": ("ogor.occlude.selection", "ImageItem collect_images target_count "
                       "largest_remainder select_paper select_first_of_runs"),
    "ogor.compose": ("ogor.occlude.compose", "rgba_to_premultiplied_bgra resize_premultiplied "
                     "feather_alpha paste apply_placement occluded_fraction"),
    "ogor.protocols": ("ogor.occlude.protocols", "InstanceSource GenerationProtocol "
                       "PaperProtocol MgccCodeProtocol PROTOCOLS list_protocols get_protocol"),
}

#: Modules that stayed importable under their old name without a warning.
KEPT = {
    "ogor.io": "sha256_bytes sha256_file atomic_write_bytes dumps_json atomic_write_json "
               "read_json stable_seed",
    "ogor.synth": "PALETTE HAIR_COLOURS SKIN_TONES JEANS_COLOURS UPPER_TYPES LOWER_TYPES "
                  "HAIR_STYLES P_HAT P_HANDBAG P_BACKPACK SPLIT_SHARES CAPTIONS_PER_IMAGE "
                  "FIRST_ID CAMERAS JPEG_QUALITY ATTRIBUTES_FILE NOTE_FILE BACKGROUNDS "
                  "UPPER_NOUNS LOWER_NOUNS SHOE_NOUNS HAT_NOUNS BAG_NOUNS BACKPACK_NOUNS "
                  "PERSON_NOUNS PersonAttributes sample_attributes sample_identities ViewParams "
                  "sample_view Point Regions render_person CAPTION_TEMPLATES make_captions "
                  "split_of_identities image_path parse_size is_synthetic synthesize",
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_path_warns_and_gives_the_same_objects(old, monkeypatch):
    new_home, names = OLD_PATHS[old]
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new_home}"):
        module = importlib.import_module(old)
    missing = [name for name in names.split() if not hasattr(module, name)]
    assert missing == []
    home = importlib.import_module(new_home)
    shared = [name for name in names.split() if hasattr(home, name)]
    assert shared and all(getattr(module, n) is getattr(home, n) for n in shared)


@pytest.mark.parametrize("kept", sorted(KEPT))
def test_kept_paths_still_give_every_old_name(kept):
    module = importlib.import_module(kept)
    assert [name for name in KEPT[kept].split() if not hasattr(module, name)] == []


def test_an_unknown_old_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ogor.no_such_module")
