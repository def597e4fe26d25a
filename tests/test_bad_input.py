"""Bad input gets a correct result or one clear error naming the file or row: never a silent one.

Each test is one bad input of data/README.md's list, built the way a new user would make it.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from nblib.core import config
from nblib.data import checks, loading, pipeline, rsna, splitting


def _hand(shape=(64, 48), seed=1) -> np.ndarray:
    """An 8-bit picture shaped like a radiograph: dark background, a bright object in the middle.
    Each ``seed`` gives another picture (one picture under two ids is a duplicate)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 30, shape).astype(np.uint8)
    h, w = shape
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = rng.integers(150, 250, (h // 2, w // 2))
    return img


def _twelve_bit(img8: np.ndarray) -> np.ndarray:
    """``img8`` as a 12-bit radiograph stored in 16 bits (values 0-4095)."""
    return (img8.astype(np.uint32) * 4095 // 255).astype(np.uint16)


def _with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """``png`` with a chunk inserted right after IHDR (where sBIT belongs)."""
    chunk = struct.pack(">I", len(body)) + kind + body
    chunk += struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]


def _folder(tmp_path, n=30, ages=None, images=None):
    """A Kaggle-layout training table of ``n`` rows with an image each."""
    d = tmp_path / "boneage-training-dataset"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        img = images(i) if images else _hand(seed=i)
        assert cv2.imwrite(str(d / f"{i}.png"), img)
    ages = ages if ages is not None else np.linspace(10, 220, n).round()
    pd.DataFrame(
        {"id": range(1, n + 1), "boneage": ages, "male": [i % 2 == 0 for i in range(n)]}
    ).to_csv(tmp_path / "boneage-training-dataset.csv", index=False)
    return tmp_path


# --- 16-bit images are scaled by their real bit depth ---------------------------------


def test_12bit_data_in_16bit_png_is_not_black(tmp_path):
    img8 = _hand()
    p = str(tmp_path / "twelve.png")
    cv2.imwrite(p, _twelve_bit(img8))
    out = pipeline.decode(p, 48)
    assert out.max() >= 245  # was 15: the 12-bit range read as 16-bit
    full, _ = pipeline.read_gray(p)
    assert np.abs(full.astype(int) - img8).max() <= 1


@pytest.mark.parametrize("top, bits", [(1023, 10), (4095, 12), (16383, 14), (65535, 16)])
def test_bit_depth_from_the_range(tmp_path, top, bits):
    p = tmp_path / "x.png"
    cv2.imwrite(str(p), (_hand().astype(np.uint32) * top // 250).clip(0, top).astype(np.uint16))
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert pipeline.bits_of(raw, p) == bits


def test_sbit_chunk_is_obeyed(tmp_path):
    p = tmp_path / "sbit.png"
    cv2.imwrite(str(p), _twelve_bit(_hand()))
    raw = p.read_bytes()
    p.write_bytes(_with_chunk(raw, b"sBIT", bytes([16])))  # the writer says: 16 significant bits
    assert pipeline.png_significant_bits(p) == 16
    assert pipeline.read_gray(p)[0].max() <= 16  # a dark 16-bit image stays dark, as declared
    p.write_bytes(_with_chunk(raw, b"sBIT", bytes([12])))
    assert pipeline.png_significant_bits(p) == 12 and pipeline.read_gray(p)[0].max() >= 245


def test_8bit_is_unchanged(tmp_path):
    p = tmp_path / "dark8.png"
    cv2.imwrite(str(p), _hand() // 16)
    np.testing.assert_array_equal(pipeline.read_gray(p)[0], _hand() // 16)


# --- tables are never silently left out ------------------------------------------


def test_official_split_without_a_test_table_keeps_validation(tmp_path):
    folder = _folder(tmp_path, n=20)
    v = folder / "boneage-validation-dataset"
    v.mkdir()
    for i in range(101, 111):
        cv2.imwrite(str(v / f"{i}.png"), _hand(seed=i))
    pd.DataFrame(
        {"Image ID": range(101, 111), "male": "TRUE", "Bone Age (months)": np.linspace(20, 200, 10)}
    ).to_csv(folder / "boneage-validation-dataset.csv", index=False)
    cfg = config.make(
        "03_resnet50", "smoke", data_dir=str(folder), output_dir=str(tmp_path / "o"), max_samples=0
    )
    split = loading.split_for(cfg)
    loading.save_split(cfg, split)
    df = split.rows
    assert len(df) == 30  # was 15: the validation rows were discarded and the rest re-split
    val = set(df.loc[df["split"] == "validation", "id"])
    assert val == {str(i) for i in range(101, 111)}
    test = df.loc[df["split"] == "test", "id"]
    assert len(test) >= 1 and set(test) <= {str(i) for i in range(1, 21)}
    note = splitting.split_file(cfg).with_suffix(".txt").read_text()
    assert "no test table" in note and f"{len(test)} of the 20 training rows" in note


def test_extra_csv_beside_kaggle_table_is_refused(tmp_path):
    folder = _folder(tmp_path, n=8)
    pd.DataFrame({"id": [50], "boneage": [100], "male": [True]}).to_csv(
        folder / "more_labels.csv", index=False
    )
    with pytest.raises(ValueError, match="more_labels.csv") as exc:
        loading.load_dataset(folder)
    assert "would be ignored" in str(exc.value) and "Rename" in str(exc.value)


def test_upper_case_csv_is_found(tmp_path):
    folder = _folder(tmp_path, n=6)
    (folder / "boneage-training-dataset.csv").rename(folder / "boneage-training-dataset.CSV")
    assert len(loading.load_dataset(folder)) == 6


def test_several_csvs_without_a_kaggle_name_are_refused(tmp_path):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("id,boneage,male\n1,100,True\n")
    with pytest.raises(ValueError, match="several CSV files") as exc:
        loading.load_dataset(tmp_path)
    assert "a.csv, b.csv" in str(exc.value)


def test_palette_png_is_named_as_unsupported(tmp_path):
    from PIL import Image

    folder = _folder(tmp_path, n=6)
    p = folder / "boneage-training-dataset" / "2.png"
    Image.fromarray(_hand()).convert("P").save(p)
    with pytest.raises(rsna.DataError, match="unsupported PNG format") as exc:
        loading.load_dataset(folder)
    assert exc.value.problems["id"].tolist() == ["2"]


# --- implausible labels and images ----------------------------------------------------


def test_ages_in_years_are_refused(tmp_path):
    folder = _folder(tmp_path, n=10, ages=np.linspace(1, 18, 10).round(1))
    with pytest.raises(ValueError, match="look like years") as exc:
        loading.load_dataset(folder)
    assert "boneage-training-dataset.csv" in str(exc.value) and "months" in str(exc.value)


def _bad_images(i):
    if i == 1:
        return np.full((64, 48), 90, np.uint8)  # blank
    if i == 2:
        return np.full((1, 1), 200, np.uint8)  # 1x1
    if i == 3:  # the picture only in the alpha channel
        bgra = np.zeros((64, 48, 4), np.uint8)
        bgra[..., 3] = _hand(seed=i)
        return bgra
    if i == 4:
        return 255 - _hand(seed=i)  # inverted: white background
    return _hand(seed=i)


def _dropping(folder, out):
    """The smoke configuration of notebook 03 on ``folder``, every row, bad rows dropped."""
    return config.make(
        "03_resnet50",
        "smoke",
        data_dir=str(folder),
        output_dir=str(out),
        drop_bad=True,
        max_samples=0,
    )


def test_blank_tiny_alpha_only_refused_inverted_warned(tmp_path):
    folder = _folder(tmp_path, n=24, images=_bad_images)
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)
    reasons = dict(zip(exc.value.problems["id"], exc.value.problems["reason"], strict=True))
    assert set(reasons) == {"1", "2", "3"}
    assert "blank" in reasons["1"] and "1x1" in reasons["2"] and "alpha" in reasons["3"]
    assert "--set drop_bad=true" in str(exc.value)
    cfg = _dropping(folder, tmp_path / "o")
    split = loading.split_for(cfg)
    assert not cfg.run_dir.exists()  # checking and splitting write no results
    loading.save_split(cfg, split)
    df = split.rows
    assert len(df) == 21 and "4" in set(df["id"])  # the inverted image is kept, with a warning
    warned = pd.read_csv(cfg.run_dir / "data_warnings.csv", dtype={"id": str})
    assert warned["id"].tolist() == ["4"] and "inverted" in warned["reason"][0]
    dropped = pd.read_csv(cfg.run_dir / "dropped_rows.csv", dtype={"id": str})
    assert sorted(dropped["id"]) == ["1", "2", "3"]


def test_the_notebooks_of_a_run_share_one_decode_and_its_verdicts(tmp_path):
    # The first notebook's checks are cached in the run folder: the next notebook (a new process,
    # here a cleared cache) decodes nothing and finds the same rows, drops and warnings.
    folder = _folder(tmp_path, n=24, images=_bad_images)
    cfg = _dropping(folder, tmp_path / "o")

    def notebook():
        pipeline.CACHE.clear()
        before = pipeline.CACHE.decodes
        split = loading.split_for(cfg)
        images = pipeline.load_images(split.rows, cfg.image_size).copy()
        return split, images, pipeline.CACHE.decodes - before

    first, first_images, decoded_first = notebook()
    assert decoded_first >= 21  # every image whose header is sound
    second, second_images, decoded = notebook()
    assert decoded == 0
    pd.testing.assert_frame_equal(first.rows, second.rows)
    np.testing.assert_array_equal(first_images, second_images)
    assert first.dropped == second.dropped and first.warnings == second.warnings
    assert [w["id"] for w in second.warnings] == ["4"]
    # a changed image file makes a new key: everything is checked and decoded again
    changed = folder / "boneage-training-dataset" / "6.png"
    cv2.imwrite(str(changed), 255 - _hand(seed=6))
    third, third_images, decoded = notebook()
    assert decoded == decoded_first
    assert [w["id"] for w in third.warnings] == ["4", "6"]
    i = third.rows.index[third.rows["id"] == "6"][0]
    assert not np.array_equal(third_images[i], first_images[i])
    assert len(list((tmp_path / "o" / "cache").glob("checks-*.npz"))) == 1  # the stale one went


def test_a_cache_that_cannot_be_written_changes_nothing_but_speed(tmp_path, capsys):
    folder = _folder(tmp_path, n=8)
    cfg = _dropping(folder, tmp_path / "o")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "cache").write_text("a file where the cache folder would go")
    pipeline.CACHE.clear()
    split = loading.split_for(cfg)
    assert len(split.rows) == 8
    out = capsys.readouterr().out
    assert "cache" in out and "was not written" in out and "decodes again" in out


def test_a_damaged_cache_is_decoded_again(tmp_path):
    folder = _folder(tmp_path, n=8)
    cfg = _dropping(folder, tmp_path / "o")
    pipeline.CACHE.clear()
    first = loading.split_for(cfg)
    (cache,) = (tmp_path / "o" / "cache").glob("checks-*.npz")
    cache.write_bytes(cache.read_bytes()[:300])  # cut short, as a full disk would leave it
    pipeline.CACHE.clear()
    before = pipeline.CACHE.decodes
    again = loading.split_for(cfg)
    assert pipeline.CACHE.decodes - before == 8
    pd.testing.assert_frame_equal(first.rows, again.rows)


def test_corrupt_image_body_is_found_before_training(tmp_path):
    folder = _folder(tmp_path, n=8)
    p = folder / "boneage-training-dataset" / "5.png"
    raw = bytearray(p.read_bytes())
    at = raw.index(b"IDAT") + 8
    raw[at : at + 40] = b"\xff" * 40  # the compressed body damaged, IEND intact
    p.write_bytes(bytes(raw))
    assert checks.png_problem(p) is None  # the header and tail look fine ...
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)  # ... the full decode before training finds it
    assert exc.value.problems["id"].tolist() == ["5"] and "decoded" in str(exc.value)
    assert "5" not in set(loading.load_dataset(folder, drop_bad=True)["id"])


# --- unclear errors made clear -----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_label_table_encodings(tmp_path, encoding):
    csv = tmp_path / "labels.csv"
    text = "Case ID,Sex,Ground truth bone age (months),Site\n7,M,120,Z\u00fcrich\n8,F,60,Orl\u00e9ans\n"
    csv.write_bytes(text.encode(encoding))  # not UTF-8: was a codec error naming no file
    table = rsna.load_labels(csv)
    assert table["id"].tolist() == ["7", "8"] and table["boneage"].tolist() == [120.0, 60.0]


def test_binary_file_named_csv_names_the_file(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_bytes(b"PK\x03\x04\x00\x00binary spreadsheet")
    with pytest.raises(ValueError, match="labels.csv") as exc:
        rsna.load_labels(csv)
    assert "UTF-8" in str(exc.value)


def test_folder_named_like_an_image(tmp_path):
    folder = _folder(tmp_path, n=6)
    p = folder / "boneage-training-dataset" / "2.png"
    p.unlink()
    p.mkdir()
    with pytest.raises(rsna.DataError, match="is a folder, not an image file"):
        loading.load_dataset(folder)


def test_data_dir_that_is_a_file(tmp_path):
    f = tmp_path / "data.zip"
    f.write_bytes(b"zip")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        loading.load_dataset(f)
    cfg = config.make("03_resnet50", "smoke", data_dir=str(f), output_dir=str(tmp_path / "o"))
    with pytest.raises(NotADirectoryError, match="data.zip is a file, not a folder"):
        loading.load_for(cfg)


@pytest.mark.parametrize(
    "name, words",
    [
        ("3.PNG", "rename it to 3.png"),
        ("3.jpg", "convert it to PNG"),
        ("3.jpeg", "convert it to PNG"),
        ("3.dcm", "DICOM"),
    ],
)
def test_image_in_another_case_or_format_is_named(tmp_path, name, words):
    folder = _folder(tmp_path, n=6)
    d = folder / "boneage-training-dataset"
    (d / "3.png").rename(d / name)
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)
    msg = str(exc.value)
    assert "id 3" in msg and name in msg and words in msg


def test_every_image_upper_case_is_hinted(tmp_path):
    folder = _folder(tmp_path, n=6)
    d = folder / "boneage-training-dataset"
    for p in list(d.glob("*.png")):
        p.rename(p.with_suffix(".PNG"))
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)
    assert len(exc.value.problems) == 6 and "lower-case .png" in str(exc.value)


# --- the real sample: no problem, no warning ---------------------------------------------------


@pytest.mark.real
def test_real_sample_has_no_problem_and_no_warning(shared_dir):
    df = loading.load_dataset(shared_dir / "data" / "rsna-sample")
    assert len(df) == 1000 and df.attrs["dropped"] == [] and df.attrs["warnings"] == []


# --- profile and parameter mistakes --------------------------------------


def _profile(tmp_path, monkeypatch, text):
    (tmp_path / "smoke.yaml").write_text(text)
    monkeypatch.setattr(config, "PARAMS_DIR", tmp_path)


def test_misspelt_notebook_section_is_refused(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, "common:\n  epochs: 1\n03_resnet-50:\n  epochs: 5\n")
    with pytest.raises(ValueError, match="unknown section '03_resnet-50'") as exc:
        config.make("03_resnet50", "smoke")
    assert "did you mean '03_resnet50'" in str(exc.value) and "smoke.yaml" in str(exc.value)


def test_every_existing_notebook_is_a_valid_section(tmp_path, monkeypatch):
    stems = config.notebook_stems()
    assert "03_resnet50" in stems and "08_comparison" in stems
    _profile(tmp_path, monkeypatch, "".join(f"{s}:\n  epochs: 2\n" for s in stems))
    assert config.make("03_resnet50", "smoke").epochs == 2


def test_yaml_syntax_error_names_file_and_line(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, "common:\n  epochs: 1\n  batch_size: [8\n03_resnet50:\n")
    with pytest.raises(ValueError, match="smoke.yaml is not valid YAML at line") as exc:
        config.make("03_resnet50", "smoke")
    assert "Traceback" not in str(exc.value)


@pytest.mark.parametrize("text, expected", [("false", False), ("False", False), ("TRUE", True)])
def test_boolean_strings_mean_what_they_say(text, expected):
    cfg = config.make("03_resnet50", "smoke", drop_bad=text)
    assert cfg.drop_bad is expected  # "false" counted as true and dropped rows


@pytest.mark.parametrize("value", ["no", 1, "yes", 0.0])
def test_other_boolean_values_are_refused(value):
    with pytest.raises(ValueError, match="drop_bad must be true or false"):
        config.make("03_resnet50", "smoke", drop_bad=value)


def test_profile_boolean_string_is_read_properly(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, 'common:\n  drop_bad: "false"\n')
    assert config.make("03_resnet50", "smoke").drop_bad is False


def test_parameters_that_slipped_through_are_all_listed():
    with pytest.raises(ValueError) as exc:
        config.make("03_resnet50", "smoke", epochs=2.7, batch_size=1e9, seed=2**32)
    msg = str(exc.value)
    assert "epochs must be a whole number, got 2.7" in msg
    assert "batch_size must be between 1 and 4096" in msg
    assert "seed must be between 0 and 2**32-1" in msg
    assert config.make("03_resnet50", "smoke", epochs=3.0, seed=2**32 - 1).epochs == 3


def test_boneage_set_applies_after_the_profile_before_parameters(monkeypatch):
    monkeypatch.setenv(config.SET_ENV, '{"drop_bad": true, "epochs": 4, "patience": 2}')
    cfg = config.make("03_resnet50", "smoke", epochs=None, patience=3)
    assert cfg.drop_bad is True and cfg.epochs == 4 and cfg.patience == 3
    monkeypatch.setenv(config.SET_ENV, "drop_bad=true")
    with pytest.raises(ValueError, match="BONEAGE_SET must be a JSON object"):
        config.make("03_resnet50", "smoke")


@pytest.mark.parametrize("profile", config.PROFILES)
def test_every_shipped_profile_builds_every_notebook(profile):
    for stem in config.notebook_stems():
        assert config.make(stem, profile).notebook == stem


def test_unknown_key_in_a_profile_names_file_section_and_key(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, "common:\n  epochs: 1\n06_ae_bonet:\n  baseline_epoch: 2\n")
    with pytest.raises(ValueError) as exc:
        config.make("03_resnet50", "smoke")  # a mistake in any section stops every notebook
    msg = str(exc.value)
    assert "smoke.yaml" in msg and "section '06_ae_bonet': baseline_epoch is not a parameter" in msg
    assert "did you mean baseline_epochs" in msg


@pytest.mark.parametrize(
    "line, expected",
    [
        ("image_size: big", "image_size must be a number, got 'big'"),
        ("epochs: 2.5", "epochs must be a whole number, got 2.5"),
        ("split: 3", "split must be text, got 3"),
        ("ae_stages: [1, two]", "ae_stages must be a list of whole numbers, got [1, 'two']"),
        ("data_dir: [a, b]", "data_dir must be a folder path, got ['a', 'b']"),
        ("profile: cpu", "profile cannot be set here (it is the file's name)"),
    ],
)
def test_wrong_type_in_a_profile_names_file_section_and_key(tmp_path, monkeypatch, line, expected):
    _profile(tmp_path, monkeypatch, f"common:\n  epochs: 1\n03_resnet50:\n  {line}\n")
    with pytest.raises(ValueError, match="smoke.yaml") as exc:
        config.load_profile("smoke")
    assert f"section '03_resnet50': {expected}" in str(exc.value)


def test_out_of_range_value_names_where_it_was_set(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, "common:\n  epochs: 0\n  width: 9\n03_resnet50:\n  width: 8\n")
    with pytest.raises(ValueError) as exc:
        config.make("03_resnet50", "smoke", seed=-1)
    msg = str(exc.value)
    assert "smoke.yaml, section 'common': epochs must be at least 1, got 0" in msg
    assert "smoke.yaml, section '03_resnet50': width must be a multiplier in (0, 4]" in msg
    assert "parameters: seed must be between 0 and 2**32-1" in msg


def test_unquoted_on_off_switches_mean_on_and_off(tmp_path, monkeypatch):
    # YAML 1.1 reads on/off as true/false, in profiles and in run_all.sh --set alike
    _profile(tmp_path, monkeypatch, "common:\n  xla: off\n  mixed_precision: on\n")
    cfg = config.make("03_resnet50", "smoke")
    assert (cfg.xla, cfg.mixed_precision) == ("off", "on")
    with pytest.raises(ValueError, match="strategy must be text, got False"):
        config.make("03_resnet50", "smoke", strategy=False)


def test_list_parameters_from_papermill_text():
    # papermill's -p passes "[1, 2]" as text; one value is a list of one
    cfg = config.make("05_autoencoder_pretraining", "smoke", ae_stages="[1, 2]", baselines="vgg16")
    assert cfg.ae_stages == (1, 2) and cfg.baselines == ("vgg16",)


def test_labels_dir_is_a_checked_path_of_the_config(monkeypatch):
    assert config.make("01_eda", "smoke").labels_dir is None
    assert config.make("01_eda", "smoke", labels_dir="").labels_dir is None
    cfg = config.make("01_eda", "smoke", labels_dir="../shared/data/rsna-labels")
    assert cfg.labels_dir == (config.ROOT.parent / "shared/data/rsna-labels").resolve()
    assert cfg.to_dict()["labels_dir"] == str(cfg.labels_dir)  # saved with every result
    monkeypatch.setenv(config.SET_ENV, '{"labels_dir": "/tables"}')
    assert config.make("01_eda", "smoke").labels_dir == Path("/tables")
    with pytest.raises(ValueError, match="labels_dir must be a folder path, got 7"):
        config.make("01_eda", "smoke", labels_dir=7)


def test_unused_fields_are_gone():
    fields = {f.name for f in dataclasses.fields(config.Config)}
    assert not {"cache", "extra"} & fields
    with pytest.raises(ValueError, match="cache is not a parameter"):
        config.make("03_resnet50", "smoke", cache="memory")


# --- the parameters cell reaches the config without being listed again -------------------------

PARAMETERS_03 = config.parameter_names(config.NOTEBOOK_DIR / "03_resnet50.ipynb")


def _kernel_globals(**values):
    """A notebook kernel's globals after 03's parameters cell (defaults as in the notebook)."""
    ns = {name: None for name in PARAMETERS_03}
    ns.update(profile="smoke", data_dir="", output_dir="", In=["import numpy", "profile = 'cpu'"])
    ns.update(values)
    return ns


def test_gathered_parameters_are_only_those_the_cell_declares():
    assert {"profile", "seed", "epochs", "max_samples"} <= PARAMETERS_03
    assert "patience" not in PARAMETERS_03  # set by profiles only
    ns = _kernel_globals(epochs=3, seed=7, patience=9, np=np, cfg=object(), split=1)
    cfg = config.from_notebook("03_resnet50", ns)
    assert (cfg.epochs, cfg.seed, cfg.profile) == (3, 7, "smoke")
    assert cfg.patience == config.make("03_resnet50", "smoke").patience  # a stray global: ignored
    assert cfg.split == "official"  # not 1: split is no parameter of 03's cell


def test_papermill_injected_cell_overrides_and_may_add_a_field():
    injected = '# Parameters\nprofile = "smoke"\nepochs = 4\npatience = 2\n'
    ns = _kernel_globals(epochs=4, patience=2)
    ns["In"].append(injected)
    cfg = config.from_notebook("03_resnet50", ns)
    assert cfg.epochs == 4 and cfg.patience == 2  # papermill -p patience 2 counts too
    ns = _kernel_globals(epochs="many")
    ns["In"].append('# Parameters\nepochs = "many"\n')
    with pytest.raises(ValueError) as exc:
        config.from_notebook("03_resnet50", ns)
    assert "papermill parameters (injected-parameters cell): epochs must be a number" in str(
        exc.value
    )


def test_gathered_parameters_are_refused_with_their_source():
    with pytest.raises(ValueError) as exc:
        config.from_notebook("03_resnet50", _kernel_globals(image_size="big", width=-1))
    msg = str(exc.value)
    assert "the parameters cell of 03_resnet50: image_size must be a number, got 'big'" in msg
    assert "the parameters cell of 03_resnet50: width must be a multiplier" in msg
    ns = _kernel_globals(epoch=3)
    ns["In"].append("# Parameters\nepoch = 3\n")
    with pytest.raises(ValueError, match="papermill parameter 'epoch' is not a parameter of 03_"):
        config.from_notebook("03_resnet50", ns)
    ns = _kernel_globals()
    del ns["epochs"]
    with pytest.raises(ValueError, match="epochs is not defined; run that cell first"):
        config.from_notebook("03_resnet50", ns)


@pytest.mark.parametrize("stem", config.notebook_stems())
def test_every_parameters_cell_declares_config_fields_only(stem):
    names = config.parameter_names(config.NOTEBOOK_DIR / f"{stem}.ipynb")
    fields = {f.name for f in dataclasses.fields(config.Config)}
    assert {"profile", "seed", "data_dir", "output_dir"} <= names <= fields


def test_config_and_results_do_not_import_each_other():
    import subprocess
    import sys

    code = "import sys, nblib.core.results; print('nblib.core.config' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=config.ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_flips_are_checked_reach_the_model_and_are_reported_as_a_departure():
    from nblib.core import runtime
    from nblib.experiments import paper1
    from nblib.report import reporting

    with pytest.raises(ValueError, match="flips must be both, horizontal or none, got 'vertical'"):
        config.make("04_inception_v4", "smoke", flips="vertical")
    cfg = config.make("04_inception_v4", "smoke", flips="horizontal", image_size=80)
    assert "flips horizontal (papers: both)" in reporting.deviations(cfg.to_dict())
    assert "flips" not in reporting.deviations(config.make("04_inception_v4", "paper").to_dict())
    table = pd.DataFrame({"boneage": [100.0, 140.0]})
    parts = {"train": table, "validation": table, "test": table}
    model = paper1.build(cfg, "inception_v4", parts, runtime._NoScope())
    names = {layer.name for layer in model.layers}
    assert "flip_lr" in names and "flip_ud" not in names


def test_a_checkpoint_of_other_flips_is_not_continued_and_older_ones_still_are():
    import hashlib
    import json

    import keras

    from nblib.train import checkpoints

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs), name="tiny")
    cfg = config.make("04_inception_v4", "smoke")
    older = json.dumps(  # what a checkpoint written before flips were a parameter is signed with
        {k: v for k, v in cfg.to_dict().items() if k in _SIGNED_BEFORE_FLIPS}, sort_keys=True
    )
    expected = hashlib.sha1(f"{older}|tiny|3".encode()).hexdigest()[:16]
    assert checkpoints.signature(model, cfg) == expected
    other = config.make("04_inception_v4", "smoke", flips="horizontal")
    assert checkpoints.signature(model, other) != expected


_SIGNED_BEFORE_FLIPS = (
    *("data_dir", "split", "max_samples", "image_size", "width", "batch_size", "learning_rate"),
    *("lr_schedule", "warmup_epochs", "seed", "patience", "bn_momentum", "clipnorm"),
    "average_epochs",
)
